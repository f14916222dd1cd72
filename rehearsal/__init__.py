"""The local rehearsal: the stack on an embedded AWS (moto's server on 127.0.0.1), for
`make demo`, the tests and the benchmarks. Not part of the `cutover` distribution."""
