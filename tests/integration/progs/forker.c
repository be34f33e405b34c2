/* forker.c: the parent calls fork_work A times, waits a while (so a flush
 * ships part of it), calls it B more times, forks; the child calls it C
 * times and leaves through exit(0) (or, with a fifth argument "return", by
 * returning from main through the frames it inherited); the parent calls it
 * D more times, waits for the child and exits.  Usage: forker A B C D
 * [exit|return].  Exact over both processes: fork_work A+B+C+D calls,
 * fork_child 1, fork_parent 1, main 1 (the parent's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile long sink;

void fork_work(int i)
{
	sink += i;
}

static void loop(int n)
{
	for (int i = 0; i < n; i++)
		fork_work(i);
}

void fork_child(int n)
{
	loop(n);
}

void fork_parent(int n)
{
	loop(n);
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	struct timespec pause = { 0, 300 * 1000 * 1000 };
	loop(atoi(argv[1]));
	nanosleep(&pause, NULL);
	loop(atoi(argv[2]));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		fork_child(atoi(argv[3]));
		printf("child done\n");
		if (argc > 5 && !strcmp(argv[5], "return"))
			return 0;
		exit(0);
	}
	fork_parent(atoi(argv[4]));
	int status = 0;
	waitpid(pid, &status, 0);
	printf("parent done, child %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}
