"""Making packages: steering vectors, cross-model maps, layer correspondences.

The one-line API (:mod:`mindvec.fit.api`)::

    vec = mindvec.fit.train(model, tokenizer, pairs, layers=[12])   # or fit.extract(pos, neg)
    with vec.apply(model, scale=4.0): ...                            # steer, as mindvec.steer
    vec.save("concept.mindvec", sign=key); vec.push("org/concept", sign=key)

Modules (torch is imported only by those that run models):

- :mod:`~mindvec.fit.stats`: centred sufficient statistics, merged exactly (Chan), npz shards.
- :mod:`~mindvec.fit.mapping`: ridge / lstsq / Procrustes / CCA / low-rank ridge from the
  statistics; :mod:`~mindvec.fit.metrics` held-out metrics and baselines;
  :mod:`~mindvec.fit.splits` the streaming train/validation/test split.
- :mod:`~mindvec.fit.vectors`: difference of means and PCA of paired differences, calibration.
- :mod:`~mindvec.fit.pairing`: cross-tokenizer pairing (``chunk``, ``aligned``).
- :mod:`~mindvec.fit.activations`: capture at loader sites, streaming, bounded memory (torch).
- :mod:`~mindvec.fit.correspondence`: CKA screen + ridge R² for candidates, heatmap.
- :mod:`~mindvec.fit.models`, :mod:`~mindvec.fit.pipeline`, :mod:`~mindvec.fit.build`: loading
  models with provenance, the shared fitting steps, and turning results into packages.
"""

from mindvec.fit.api import Vector, extract, train

__all__ = ["Vector", "extract", "train"]
