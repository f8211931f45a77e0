"""Token-level world labels, latent dashboards, the latent browser widget and direction logits:
the pieces chapter 06 uses to say what a latent means."""

import matplotlib
import pytest
import torch

from mechinterp_course import lens, neurons, sae, viz, widgets, world

matplotlib.use("Agg")
SITE = ("resid_post", 1)


@pytest.fixture(scope="module")
def labelled(course_model):
    return neurons.collect(course_model, docs_per_family=3, seed=7, site=SITE, skip_first=1)


@pytest.fixture(scope="module")
def random_sae(course_model):
    return sae.SAE(course_model.cfg.d_model, 64, k=8, seed=1)


def span_text(data, i):
    doc = data.documents[int(data.doc[i])]
    start, end = data.spans[i].tolist()
    return doc.text[start:end].strip()


def test_token_labels_mark_exactly_the_world_s_words(labelled):
    labels = labelled.token_labels()
    continents = {c for _, c, _ in world.COUNTRIES.values()}
    assert {"country name", "state capital", "person name", "Python keyword",
            "rule symbol"} <= set(labels)
    for i in range(len(labelled.family)):
        doc = labelled.documents[int(labelled.doc[i])]
        text = span_text(labelled, i)
        if doc.family == "country":
            in_country = text in doc.attrs["country"].split()
            assert bool(labels["country name"][i]) == in_country, (text, doc.text)
            key = f"country in {doc.attrs['continent']}"
            assert bool(labels[key][i]) == in_country
        if doc.family in ("ioi", "story"):
            assert bool(labels["person name"][i]) == (text in world.NAMES), text
        if doc.family == "rule" and i > 0 and labels["rule symbol"][i]:
            assert len(text) == 1 and text in world.RULE_SYMBOLS
    for c in continents:  # a continent label only ever marks country names
        if f"country in {c}" in labels:
            assert not (labels[f"country in {c}"] & ~labels["country name"]).any()
    # labels never leak across families
    python = labelled.families.index("python")
    assert not (labels["Python keyword"] & (labelled.family != python)).any()


def test_token_labels_need_spans():
    data = neurons.NeuronData(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long),
                              torch.zeros(2, dtype=torch.long), ["a"], ["x", "y"], 1)
    with pytest.raises(ValueError, match="spans"):
        data.token_labels()


def test_direction_logits_fold_the_norm_weight_and_centre_for_layernorm(course_model):
    d = torch.randn(course_model.cfg.d_model)
    weight, _, _ = lens.final_norm_parts(course_model)
    expected = ((d - d.mean()) * weight) @ course_model.W_U
    assert torch.allclose(lens.direction_logits(course_model, d), expected, atol=1e-5)
    # a constant direction is removed by LayerNorm's centring: it writes nothing
    assert lens.direction_logits(course_model, torch.ones_like(d)).abs().max() < 1e-4
    # and the reading is linear
    assert torch.allclose(lens.direction_logits(course_model, 3 * d), 3 * expected, atol=1e-4)


def test_summary_reads_the_latent_s_own_activations(course_model, labelled, random_sae):
    with torch.no_grad():
        latents = random_sae.encode(labelled.acts)
    latent = int((latents > 0).sum(0).argmax())  # one that fires
    s = sae.summarise_latent(course_model, random_sae, labelled, latents, latent, k=5)
    acts = [a for a, _ in s.top_contexts]
    assert acts == sorted(acts, reverse=True)
    assert acts[0] == pytest.approx(float(latents[:, latent].max()))
    best = latents[:, latent].argmax()
    assert s.top_contexts[0][1] == labelled.contexts[int(best)]
    logits = lens.direction_logits(course_model, random_sae.W_dec[latent].detach())
    assert s.promoted[0][0] == course_model.to_string(int(logits.argmax()))
    assert s.suppressed[0][0] == course_model.to_string(int(logits.argmin()))
    scores = [v for _, v in s.best_labels]
    assert scores == sorted(scores, reverse=True)
    assert s.fires == pytest.approx(float((latents[:, latent] > 0).float().mean()))
    with pytest.raises(IndexError, match="64 latents"):
        sae.summarise_latent(course_model, random_sae, labelled, latents, 64)
    fig = viz.plot_latent(s)
    assert len(fig.axes) == 3 and f"latent {latent}" in fig._suptitle.get_text()


def test_latent_browser_redraws_when_driven(course_model, labelled, random_sae):
    browser = widgets.latent_browser(course_model, random_sae, labelled, start=0)
    first = browser.image.value
    assert first[:4] == b"\x89PNG" and "latent 0" in browser.info.value
    browser.latent.value = 5
    assert browser.image.value != first and "latent 5" in browser.info.value
    # jumping to a label selects the latent that detects it best
    browser.by_label.value = "person name"
    scores = neurons.auroc(browser.latents, browser.labels["person name"])
    assert browser.latent.value == int(scores.argmax())
    assert f"latent {browser.latent.value}" in browser.info.value
    assert len(browser.static().axes) == 3
