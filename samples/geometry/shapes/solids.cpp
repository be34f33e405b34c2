// shapes/solids.cpp: circles, squares and the checks that reject some of them.
#include <stdexcept>
#include "shapes.h"

namespace geo {

double Circle::area() const
{
	return 3 * r_ * r_;
}

double Square::area() const
{
	return side_ * side_;
}

double scale(double value, double factor)
{
	return value * factor;
}

long scale(long value, long factor)
{
	return value * factor;
}

void validate(const Shape &, int n)
{
	if (n % 10 == 7)
		throw std::domain_error("shape rejected");
	if (n < 0)
		throw std::domain_error("negative shape number");
}

double measure(int n)
{
	Circle c(n % 5 + 1);
	Square q(n % 7 + 1);
	const Shape &s = n % 2 ? static_cast<const Shape &>(q) : c;

	validate(s, n);
	return scale(s.area(), 2.0) + scale(static_cast<long>(n), 3L);
}

int parse_label(int n)
{
	try {
		if (n % 5 == 0)
			throw std::invalid_argument("empty label");
		return 1;
	} catch (const std::invalid_argument &) {
		return 0;
	}
}

} // namespace geo
