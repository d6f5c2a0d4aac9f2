"""The functional core: channels, utilities, precoders, power adapters, tokenizers, linear algebra and
argument checks. Pure JAX (no Flax, optax, files, progress bars or devices); ``jb.*`` re-exports its
public functions."""
