// shapes/shapes.h: the geometry sample's classes.
#ifndef SHAPES_H
#define SHAPES_H

namespace geo {

class Shape {
public:
	virtual ~Shape() {}
	virtual double area() const = 0;
};

class Circle : public Shape {
public:
	explicit Circle(double r) : r_(r) {}
	double area() const override;
private:
	double r_;
};

class Square : public Shape {
public:
	explicit Square(double side) : side_(side) {}
	double area() const override;
private:
	double side_;
};

// Two overloads: their names must stay distinct and stable.
double scale(double value, double factor);
long scale(long value, long factor);

// Throws std::domain_error for every shape n with n % 10 == 7.
void validate(const Shape &s, int n);
// Builds shape n, validates it, returns its scaled area (may throw).
double measure(int n);
// Parses a label; throws and catches internally for n % 5 == 0.
int parse_label(int n);

} // namespace geo

#endif
