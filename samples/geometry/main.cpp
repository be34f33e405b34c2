// main.cpp: the geometry sample: N shapes (argv[1], default 100), each
// measured inside a try block; one summary line on stdout.
//
// For N shapes: geo::measure, geo::validate, geo::parse_label and process:
// N calls each; shapes n with n % 10 == 7 throw from geo::validate through
// geo::measure into process, which catches: errors of validate and measure
// = (N + 2) / 10, of process 0.  parse_label throws and catches inside
// itself for n % 5 == 0: never an error.  With K = (N + 2) / 10 rejected:
// Circle::area (even n) (N + 1) / 2 calls, Square::area N / 2 - K, each
// scale overload N - K.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include "shapes/shapes.h"

static long rejected;

static double process(int n)
{
	geo::parse_label(n);
	try {
		return geo::measure(n);
	} catch (const std::domain_error &) {
		rejected++;
		return 0;
	}
}

int main(int argc, char **argv)
{
	int shapes = argc > 1 ? std::atoi(argv[1]) : 100;
	double sum = 0;

	for (int n = 0; n < shapes; n++)
		sum += process(n);
	std::printf("geometry: shapes=%d rejected=%ld sum=%.1f\n", shapes, rejected, sum);
	return 0;
}
