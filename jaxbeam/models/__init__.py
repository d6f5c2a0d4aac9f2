"""Flax Linen models: the encoder block, BERT, UBERT and the paper's baselines."""

from jaxbeam.models.encoder import Encoder, EncoderBlock, attention_mask

__all__ = ["Encoder", "EncoderBlock", "attention_mask"]
from jaxbeam.models.bert import BERT, Embedding  # noqa: E402

__all__ += ["BERT", "Embedding"]
from jaxbeam.models.baselines import CNN, GAT, GCN, GPT, MLP  # noqa: E402
from jaxbeam.models.ubert import UBERT, AntennaEncoding, cosine_positional_encoding  # noqa: E402

__all__ += ["UBERT", "AntennaEncoding", "cosine_positional_encoding", "MLP", "CNN", "GCN", "GAT", "GPT"]
