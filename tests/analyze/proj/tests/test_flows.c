/* A test of the sample project: the identifiers it uses decide has_tests.
 * classify() in a comment and "pick" in a string do not count. */
int loops(int n);
int setup(int fd);

int main(void)
{
	const char *s = "pick";
	(void)s;
	return loops(3) + setup(-1) == 0;
}
