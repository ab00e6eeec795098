"""MiniLMEmbedder: the numpy forward pass reproduces all-MiniLM-L6-v2."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from calls.pipeline.protocols import TextEmbedder
from calls.providers import minilm
from calls.providers.minilm import MiniLMEmbedder


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def cosine(embedder: MiniLMEmbedder, a: str, b: str) -> float:
    va, vb = embedder.embed([a, b])
    return float(va @ vb)


def test_is_a_text_embedder(embedder: MiniLMEmbedder) -> None:
    assert isinstance(embedder, TextEmbedder)
    assert embedder.name == "minilm-l6-v2"
    assert embedder.dim == 384


def test_matches_the_published_sentence_transformers_similarities(embedder: MiniLMEmbedder) -> None:
    # The sentence-transformers quickstart prints these for all-MiniLM-L6-v2
    # (torch); equal values to 4 places mean the numpy pass is the same model.
    vectors = embedder.embed(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    similarities = np.round(vectors @ vectors.T, 4)
    assert similarities[0, 1] == pytest.approx(0.6660, abs=1e-4)
    assert similarities[0, 2] == pytest.approx(0.1046, abs=1e-4)
    assert similarities[1, 2] == pytest.approx(0.1411, abs=1e-4)


def test_output_is_float32_and_l2_normalised(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["Are you open on Saturdays?", "My kitchen sink is leaking all over the floor."])
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [1.0, 1.0], atol=1e-5)


def test_paraphrases_score_high_and_unrelated_sentences_low(embedder: MiniLMEmbedder) -> None:
    assert cosine(embedder, "Are you open on Saturdays?", "What are your opening hours?") == pytest.approx(
        0.6995, abs=1e-3
    )
    assert cosine(embedder, "Are you open on Saturdays?", "My kitchen sink is leaking") == pytest.approx(
        0.0613, abs=1e-3
    )
    assert cosine(embedder, "How much is a callout?", "How much is a call-out?") == pytest.approx(0.9047, abs=1e-3)


def test_padding_in_a_batch_does_not_change_an_embedding() -> None:
    short = "Do you accept insurance?"
    alone = MiniLMEmbedder().embed([short])[0]
    batched = MiniLMEmbedder().embed([short, "We accept most major dental insurance plans, including Delta Dental."])[0]
    np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_empty_input_and_repeated_texts(embedder: MiniLMEmbedder) -> None:
    assert embedder.embed([]).shape == (0, 384)
    a, b, c = embedder.embed(["Hello there.", "Goodbye.", "Hello there."])
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


def test_cache_is_bounded_and_returns_the_same_vectors() -> None:
    small = MiniLMEmbedder(cache_size=2)
    first = small.embed(["one", "two", "three"])
    assert len(small._cache) == 2
    np.testing.assert_allclose(small.embed(["one", "two", "three"]), first, atol=1e-6)


def test_weights_load_once_per_process() -> None:
    model_dir = minilm.default_model_dir()
    assert minilm._load(model_dir) is minilm._load(model_dir)
    assert MiniLMEmbedder()._model() is MiniLMEmbedder()._model()


def test_threads_share_one_embedder(embedder: MiniLMEmbedder) -> None:
    texts = [f"Caller question number {i}?" for i in range(12)]
    expected = MiniLMEmbedder().embed(texts)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        results[k] = embedder.embed(texts[k::4])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        np.testing.assert_allclose(results[k], expected[k::4], atol=1e-5)
