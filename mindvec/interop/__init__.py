"""Moving vectors between mindvec and the tools people already use (llama.cpp, repeng,
steering-vectors, TransformerLens / SAELens, Neuronpedia): :mod:`~mindvec.interop.names` is the
one site mapping (spec 8.3, 8.4), :mod:`~mindvec.interop.export` writes their formats from a
verified package."""
