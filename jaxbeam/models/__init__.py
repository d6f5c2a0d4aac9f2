"""Flax Linen models: the encoder block, BERT, UBERT and the paper's baselines."""

from jaxbeam.models.baselines import CNN, GAT, GCN, GPT, MLP
from jaxbeam.models.bert import BERT, Embedding
from jaxbeam.models.encoder import Encoder, EncoderBlock, attention_mask
from jaxbeam.models.ubert import UBERT, AntennaEncoding, cosine_positional_encoding

__all__ = [
    "BERT",
    "CNN",
    "GAT",
    "GCN",
    "GPT",
    "MLP",
    "UBERT",
    "AntennaEncoding",
    "Embedding",
    "Encoder",
    "EncoderBlock",
    "attention_mask",
    "cosine_positional_encoding",
]
