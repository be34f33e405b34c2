// C++ samples for tests/analyze: qualified names, overloads, try/catch/throw.
#include <stdexcept>

namespace geo {

struct Box {
	int w;
	explicit Box(int side) : w(side) {}
	explicit Box(double side) : w((int)side) {}
	~Box();
	int area() const;
};

Box::~Box()
{
	w = 0;
}

int Box::area() const
{
	if (w < 0)
		throw std::invalid_argument("negative");
	return w * w;
}

int scale(int v) { return v * 2; }
double scale(double v) { return v * 2; }

int safe_area(const Box &b)
{
	try {
		return b.area();
	} catch (const std::invalid_argument &) {
		return -1;
	} catch (...) {
		throw;
	}
}

} // namespace geo

// The library's entry point for the C program (tests/analyze/proj/main.c).
extern "C" int shapes_demo(int w)
{
	geo::Box b{w}, c{0.5};
	return geo::safe_area(b) + geo::safe_area(c) + geo::scale(w) + (int)geo::scale(0.5);
}
