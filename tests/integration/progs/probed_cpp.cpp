// probed_cpp.cpp: "probed_cpp N": N calls of middle(i), which calls
// thrower(i); thrower throws for every i divisible by 3, and main catches.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

__attribute__((noinline)) int thrower(int i)
{
	if (i % 3 == 0)
		throw std::runtime_error("three");
	return i;
}

__attribute__((noinline)) int middle(int i)
{
	return thrower(i) + 1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 30, caught = 0;
	for (int i = 0; i < n; i++) {
		try {
			middle(i);
		} catch (const std::exception &) {
			caught++;
		}
	}
	printf("caught %d\n", caught);
	return 0;
}
