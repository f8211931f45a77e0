"""Each explorer draws something, and redraws when a control is driven the way a click or a
slider move would drive it."""

import matplotlib
import pytest
import torch

from mechinterp_course import circuits, kvcache, lens, widgets

matplotlib.use("Agg")
PROMPTS = ["The cat sat on the mat. The cat", "The capital of Texas is"]


def is_png(data: bytes) -> bool:
    return data[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def scores(course_model):
    return circuits.head_scores(course_model, seq_len=20, batch=2)


def test_attention_explorer_follows_layer_head_and_prompt(course_model, scores):
    ex = widgets.attention_explorer(course_model, PROMPTS, scores=scores)
    first = ex.image.value
    assert is_png(first) and "L0H0" in ex.info.value
    ex.layer.value, ex.head.value = 2, 1
    assert ex.image.value != first and "L2H1" in ex.info.value
    assert f"{float(scores['induction'][2, 1]):.2f}" in ex.info.value
    _, cache = course_model.run_with_cache(PROMPTS[0], names=["pattern"])
    assert torch.allclose(ex.pattern(), cache["pattern", 2][0, 1])
    ex.prompt.value = PROMPTS[1]
    n = len(course_model.to_str_tokens(PROMPTS[1]))
    assert ex.pattern().shape == (n, n)
    assert len(ex.static().axes) == 1


def test_logit_lens_explorer_reads_the_lens(course_model):
    ex = widgets.logit_lens_explorer(course_model, PROMPTS[1])
    n = len(course_model.to_str_tokens(PROMPTS[1]))
    assert ex.position.max == n - 1 and ex.position.value == n - 1
    _, cache = course_model.run_with_cache(PROMPTS[1])
    last = lens.logit_lens(course_model, cache)[-1, 0, -1]
    assert ex.top(-1)[0][0] == course_model.to_string(int(last.argmax()))
    table = ex.table.value
    ex.position.value = 1
    assert ex.table.value != table and "position 1" in ex.table.value
    image = ex.image.value
    ex.prompt.value = "The capital of France is"
    assert ex.image.value != image and is_png(ex.image.value)
    assert ex.position.max == len(course_model.to_str_tokens("The capital of France is")) - 1


def test_generation_stepper_matches_greedy_generation_and_grows_the_cache(course_model):
    st = widgets.generation_stepper(course_model, PROMPTS[1])
    n0 = st.tokens.shape[1]
    image = st.image.value
    assert len(st.cache) == n0
    for _ in range(3):
        st.step_button.click()
    assert st.image.value != image and f"for {n0 + 3} positions" in st.text.value
    expected = kvcache.generate_with_cache(course_model, course_model.to_tokens(PROMPTS[1]), 3)
    assert torch.equal(st.tokens, expected)
    assert len(st.cache) == n0 + 3  # each new token is run at once, for the next distribution
    per_layer = st.layer_bytes()
    assert sum(per_layer) == st.cache.nbytes() and len(set(per_layer)) == 1
    st.reset_button.click()
    assert st.tokens.shape[1] == n0 and len(st.cache) == n0


def test_graph_explorer_draws_the_graph_and_reads_its_nodes(course_model):
    import html

    from mechinterp_course import attribution_graph, transcoders

    shipped = transcoders.load(course_model)
    prompts = ["The capital of Texas is", "The capital of France is"]
    ex = widgets.graph_explorer(course_model, shipped, prompts, n_nodes=8)
    first = ex.image.value
    g = ex.graph
    assert is_png(first) and g.answer == course_model.to_single_token(" Austin")
    top = int(g.influence[:-1].argmax())
    assert ex.node.value == top and html.escape(str(g.nodes[top])) in ex.info.value
    ex.node.value = ex.node.options[2][1]
    assert html.escape(str(g.nodes[ex.node.options[2][1]])) in ex.info.value
    assert ex.image.value != first
    ex.n_nodes.value = 20
    assert len(ex.node.options) == 20
    ex.prompt.value = prompts[1]
    assert ex.graph.answer == course_model.to_single_token(" Paris")
    want = attribution_graph.attribute(course_model, shipped, prompts[1], ex.graph.answer)
    assert torch.equal(ex.graph.adjacency, want.adjacency)
    assert len(ex.static().axes) == 1


def test_a_widget_displayed_where_widgets_cannot_run_shows_its_current_picture(course_model):
    """The display bundle keeps the live widget first and adds its picture as a PNG, for GitHub's
    viewer, the website and nbconvert; the picture follows the controls."""
    import base64

    ex = widgets.attention_explorer(course_model, PROMPTS)
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == ex.image.value
    ex.layer.value = 2
    assert base64.b64decode(ex._repr_mimebundle_()["image/png"]) == ex.image.value
    ex.image.value = b""  # nothing drawn: no picture rather than an empty one
    assert "image/png" not in ex._repr_mimebundle_()
