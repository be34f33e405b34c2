int straight(int a);
int checked(int v);

int main(int argc, char **argv)
{
	(void)argv;
	return checked(argc) + straight(argc);
}
