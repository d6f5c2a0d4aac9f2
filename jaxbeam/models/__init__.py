"""Flax Linen models: the encoder block, BERT, UBERT, the paper's baselines, paper 002's SAO optimiser, the
deep-unfolded WMMSE and low-rank adapters for any of them (:mod:`jaxbeam.models.lora`, papers 003-004)."""

from jaxbeam.models import lora
from jaxbeam.models.baselines import CNN, GAT, GCN, GPT, MLP
from jaxbeam.models.bert import BERT, Embedding
from jaxbeam.models.encoder import Encoder, EncoderBlock, attention_mask
from jaxbeam.models.sao import SAO, MaskedTransformerLayer
from jaxbeam.models.ubert import UBERT, AntennaEncoding, cosine_positional_encoding
from jaxbeam.models.unfolded import UnfoldedWMMSE

__all__ = [
    "BERT",
    "CNN",
    "GAT",
    "GCN",
    "GPT",
    "MLP",
    "SAO",
    "UBERT",
    "UnfoldedWMMSE",
    "AntennaEncoding",
    "Embedding",
    "Encoder",
    "MaskedTransformerLayer",
    "EncoderBlock",
    "attention_mask",
    "cosine_positional_encoding",
    "lora",
]
