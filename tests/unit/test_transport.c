/* test_transport.c: every answer of a real local HTTP server maps to the
 * send result the contract asks for, and a request that may have arrived
 * is never reported as cleanly failed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "internal.h"

static pid_t server_pid;
static int server_stdin = -1;
static int port;

static int start_server(void **state)
{
	int in[2], out[2];
	if (pipe(in) || pipe(out))
		return -1;
	server_pid = fork();
	if (server_pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execlp("python3", "python3", "tests/unit/fixtures/status_server.py", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	server_stdin = in[1];
	char buf[32] = "";
	FILE *f = fdopen(out[0], "r");
	if (!f || !fgets(buf, sizeof buf, f))
		return -1;
	port = atoi(buf);
	return port > 0 ? 0 : -1;
}

static int stop_server(void **state)
{
	close(server_stdin);
	kill(server_pid, SIGTERM);
	waitpid(server_pid, NULL, 0);
	return 0;
}

static struct cnsmp_config cfg_for(char *url, const char *path)
{
	snprintf(url, 128, "http://127.0.0.1:%d%s", port, path);
	struct cnsmp_config c;
	memset(&c, 0, sizeof c);
	c.api_key = "k";
	c.endpoint = url;
	return c;
}

static enum cnsmp_send_result post(const char *path, long timeout_ms)
{
	char url[128];
	struct cnsmp_config c = cfg_for(url, path);
	return cnsmp_transport_post(&c, "{\"functions\":[]}", timeout_ms);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_2xx_is_sent(void **state)
{
	assert_int_equal(post("/status/200", 2000), CNSMP_SENT);
	assert_int_equal(cnsmp_transport_last_status(), 200);
	assert_int_equal(post("/status/202", 2000), CNSMP_SENT);
}

static void test_the_contract_headers_are_sent(void **state)
{
	assert_int_equal(post("/check", 2000), CNSMP_SENT);
}

static void test_413_is_too_large_and_429_is_quota(void **state)
{
	assert_int_equal(post("/status/413", 2000), CNSMP_TOO_LARGE);
	assert_int_equal(post("/status/429", 2000), CNSMP_QUOTA);
}

static void test_other_4xx_are_rejected(void **state)
{
	assert_int_equal(post("/status/400", 2000), CNSMP_REJECTED);
	assert_int_equal(post("/status/401", 2000), CNSMP_REJECTED);
	assert_int_equal(cnsmp_transport_last_status(), 401);
	assert_int_equal(post("/status/404", 2000), CNSMP_REJECTED);
}

static void test_5xx_failed_cleanly(void **state)
{
	assert_int_equal(post("/status/500", 2000), CNSMP_FAILED_CLEAN);
	assert_int_equal(post("/status/503", 2000), CNSMP_FAILED_CLEAN);
}

static void test_nobody_listening_failed_cleanly(void **state)
{
	/* A port that was free a moment ago: bind, read it, close. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof a;
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
	close(s);
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/codensm/ingest", ntohs(a.sin_port));
	struct cnsmp_config c;
	memset(&c, 0, sizeof c);
	c.api_key = "k";
	c.endpoint = url;
	assert_int_equal(cnsmp_transport_post(&c, "{}", 2000), CNSMP_FAILED_CLEAN);
	assert_int_equal(cnsmp_transport_last_status(), 0);
	c.endpoint = "http://no-such-host.invalid/codensm/ingest";
	assert_int_equal(cnsmp_transport_post(&c, "{}", 2000), CNSMP_FAILED_CLEAN);
}

static void test_no_answer_after_sending_is_unsure(void **state)
{
	double t0 = now_s();
	assert_int_equal(post("/hang", 300), CNSMP_FAILED_UNSURE);
	assert_true(now_s() - t0 < 2.0);
	assert_int_equal(post("/reset", 2000), CNSMP_FAILED_UNSURE);
}

static void test_a_deadline_cuts_a_transfer_short(void **state)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	cnsmp_transport_set_deadline(now + 200000000u);
	double t0 = now_s();
	assert_int_equal(post("/hang", 10000), CNSMP_FAILED_UNSURE);
	assert_true(now_s() - t0 < 2.0);
	cnsmp_transport_set_deadline(0);
	/* The reused handle still works afterwards. */
	assert_int_equal(post("/status/200", 2000), CNSMP_SENT);
	cnsmp_transport_release();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_2xx_is_sent),
		cmocka_unit_test(test_the_contract_headers_are_sent),
		cmocka_unit_test(test_413_is_too_large_and_429_is_quota),
		cmocka_unit_test(test_other_4xx_are_rejected),
		cmocka_unit_test(test_5xx_failed_cleanly),
		cmocka_unit_test(test_nobody_listening_failed_cleanly),
		cmocka_unit_test(test_no_answer_after_sending_is_unsure),
		cmocka_unit_test(test_a_deadline_cuts_a_transfer_short),
	};
	return cmocka_run_group_tests_name("transport", tests, start_server, stop_server);
}
