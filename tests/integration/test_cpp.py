"""test_cpp.py: the geometry sample (C++): qualified names, distinct
overloads, and exceptions counted as errors of the throwing function and
of every tracked function they pass through, with g++ (exit hooks run
while unwinding) and clang++ (they do not: the shadow stack recovers)."""
import os
import unittest

from harness import SAMPLES_SRC, Case, Totals, decl_line, have, run, sample

N = 100
K = (N + 2) // 10  # shapes rejected: n % 10 == 7
SRC = os.path.join(SAMPLES_SRC, "geometry")
M = "shapes.solids."


def expected():
    return {
        "main.main": (1, 0),
        "main.process": (N, 0),
        M + "geo::parse_label": (N, 0),
        M + "geo::measure": (N, K),
        M + "geo::validate": (N, K),
        M + "geo::Circle::area": ((N + 1) // 2, 0),
        M + "geo::Square::area": (N // 2 - K, 0),
    }


class GeometryCase(Case):
    variant = "geometry"

    def setUp(self):
        super().setUp()
        if not os.path.exists(sample(self.variant)):
            self.skipTest("%s not built" % self.variant)

    def geometry(self):
        rec = self.receiver()
        r = run([sample(self.variant), str(N)], self.env(rec, CODENSM_INCLUDE="shapes,main"))
        self.assert_ran(r)
        plain = run([sample("geometry-plain"), str(N)], self.env())
        self.assertEqual(r.stdout, plain.stdout)
        self.assertTrue(r.stdout.startswith("geometry: shapes=%d rejected=%d " % (N, K)), r.stdout)
        return Totals(rec.committed())

    def test_exceptions_are_errors_of_every_frame_they_leave(self):
        """validate throws, measure passes it on, process catches: K errors each for validate and measure, none for process"""
        t = self.geometry()
        got = {k: v for k, v in t.counts().items()
               if k.startswith(("main.", M)) and "geo::scale" not in k}
        self.assertEqual(got, expected())

    def test_inline_constructors(self):
        """constructors defined in the header are named from it and counted: Circle N, Square N, Shape 2N"""
        t = self.geometry()
        h = "shapes.shapes.geo::"
        got = {k: v for k, v in t.counts(h).items() if "~" not in k}
        self.assertEqual(got, {h + "Circle::Circle": (N, 0), h + "Square::Square": (N, 0),
                               h + "Shape::Shape": (2 * N, 0)})
        self.assertEqual(t.fns[h + "Circle::Circle"]["file"], "shapes/shapes.h")

    def test_overloads_stay_distinct(self):
        """the two geo::scale overloads are two functions with N - K calls each"""
        t = self.geometry()
        scale = {k: v for k, v in t.counts().items() if k.startswith(M + "geo::scale")}
        self.assertEqual(sorted(scale.values()), [(N - K, 0), (N - K, 0)], scale)
        self.assertEqual(len(scale), 2, scale)

    def test_locations(self):
        """C++ functions carry their file and declaration line"""
        t = self.geometry()
        for name, fn in [("geo::validate", "validate"), ("geo::measure", "measure"),
                         ("geo::Circle::area", "Circle::area")]:
            e = t.fns[M + name]
            self.assertEqual((e["file"], e["line"]),
                             ("shapes/solids.cpp", decl_line(os.path.join(SRC, "shapes", "solids.cpp"), fn)))

    def test_exception_incident(self):
        """each rejected shape is one exception incident whose chain ends in validate"""
        t = self.geometry()
        inc = t.incident_counts("exception")
        ending = {chain: n for (kind, chain), n in inc.items() if chain[-1] == M + "geo::validate"}
        self.assertEqual(sum(ending.values()), K, inc)
        for chain in ending:
            self.assertEqual(list(chain[-3:]), ["main.process", M + "geo::measure", M + "geo::validate"])

    def test_stack_is_sound_after_exceptions(self):
        """after the exceptions, calls still nest correctly: process -> measure edges equal process calls"""
        t = self.geometry()
        self.assertEqual(t.edges[("main.process", M + "geo::measure")], N)
        self.assertEqual(t.edges[("main.process", M + "geo::parse_label")], N)
        self.assertEqual(t.edges[("main.main", "main.process")], N)


class TestGeometryGcc(GeometryCase):
    variant = "geometry"


class TestGeometryClang(GeometryCase):
    variant = "geometry-clang"

    def setUp(self):
        if not have("clang++"):
            self.skipTest("clang++ not installed")
        super().setUp()


del GeometryCase

if __name__ == "__main__":
    unittest.main()
