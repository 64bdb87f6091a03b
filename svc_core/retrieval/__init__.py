"""Cluster (k-means) and feature-retrieval (faiss) timbre leakage control, spec e.

    retriever = load_retrieval("logs/44k/kmeans_10000.pt")
    c = retriever.mix(c, speaker_name="spk0", speaker_id=0, ratio=0.5)  # c: [T, C] float32
"""
from .base import Retriever
from .faiss_index import (FaissRetriever, build_faiss_index, load_index_file, load_index_pickle,
                          neighbour_weights, save_index_pickle)
from .kmeans import KMeansRetriever, load_kmeans, nearest_centers, save_kmeans, train_kmeans
from .loader import detect_kind, load_retrieval

__all__ = [
    "Retriever", "KMeansRetriever", "FaissRetriever", "load_retrieval", "detect_kind",
    "load_kmeans", "nearest_centers", "train_kmeans", "save_kmeans",
    "load_index_pickle", "load_index_file", "neighbour_weights", "build_faiss_index", "save_index_pickle",
]
