int straight(int a);
int checked(int v);
int shapes_demo(int w);

int main(int argc, char **argv)
{
	(void)argv;
	return checked(argc) + straight(argc) + shapes_demo(argc) == 0;
}
