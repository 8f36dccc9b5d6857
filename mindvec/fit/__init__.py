"""Making packages: activations, steering vectors, cross-model maps, layer correspondences.

Modules (torch is imported only by those that run models):

- :mod:`~mindvec.fit.stats`: centred sufficient statistics, merged exactly (Chan), npz shards.
- :mod:`~mindvec.fit.mapping`: ridge / lstsq / Procrustes / CCA / low-rank ridge from the
  statistics, held-out metrics (centred cosine, raw cosine, R²) and baselines.
- :mod:`~mindvec.fit.vectors`: difference of means and PCA of paired differences, calibration.
- :mod:`~mindvec.fit.pairing`: cross-tokenizer pairing (``chunk``, ``aligned``).
- :mod:`~mindvec.fit.activations`: capture at loader sites, streaming, bounded memory (torch).
- :mod:`~mindvec.fit.correspondence`: CKA screen + ridge R² for candidates, heatmap.
- :mod:`~mindvec.fit.models`, :mod:`~mindvec.fit.pipeline`, :mod:`~mindvec.fit.build`: loading
  models with provenance, the shared fitting steps, and turning results into packages.
"""
