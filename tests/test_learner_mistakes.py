"""Mistakes a learner makes with the model object: each gives a clear error or the right answer,
never a raw traceback from deep inside torch and never a silently wrong number."""

import numpy as np
import pytest
import torch


def test_a_bad_hook_name_installs_no_hook(any_model):
    """A valid name followed by an invalid one used to leave the first hook installed, so every
    later forward pass was silently ablated."""
    m = any_model
    toks = m.to_tokens("The capital of Texas is")
    with torch.no_grad():
        clean = m(toks)
        for bad in ({("mlp_out", 0): lambda x: x * 0, ("bogus", 1): lambda x: x},
                    [(("mlp_out", 0), lambda x: x * 0), (("mlp_out", 99), lambda x: x)],
                    [(("mlp_out", 0), lambda x: x * 0), (("mlp_out", 1), "not a function")],
                    [(("mlp_out", 0), lambda x: x * 0), ("resid_post",)]):
            with pytest.raises((KeyError, TypeError)):
                with m.hooks(bad):
                    pass
            assert not m._hook_fns and not m._active
            with pytest.raises((KeyError, TypeError)):
                m.run_with_hooks(toks, bad)
            torch.testing.assert_close(m(toks), clean, atol=0, rtol=0)


def test_ragged_generation_continues_each_prompt_as_alone(any_model):
    """Right padding under an all-ones mask made short prompts continue after a run of EOS
    tokens; the batch must give what each prompt gives alone, as text."""
    m = any_model
    prompts = ["Hi", "The capital of Texas is", "When Mary and John went to the store, John"]
    batch = m.generate(prompts, max_new_tokens=6)
    assert isinstance(batch, list) and all(isinstance(t, str) for t in batch)
    assert batch == [m.generate(p, max_new_tokens=6) for p in prompts]
    assert all(t.startswith(p) for t, p in zip(batch, prompts))
    assert m.generate(("Hi",), max_new_tokens=2) == [m.generate("Hi", max_new_tokens=2)]


def test_right_padded_generation_would_have_differed(course_model):
    """The test above can fail: generating from right-padded ids changes the short prompt's
    continuation on the course model."""
    m = course_model
    padded = m.to_tokens(["Hi", "The capital of Texas is"])  # right-padded, as to_tokens pads
    wrong = m.to_string(m.generate(padded, max_new_tokens=6)[0, 1:])
    assert wrong != m.generate("Hi", max_new_tokens=6)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_new_tokens": 1.5}, "max_new_tokens"), ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"max_new_tokens": True}, "max_new_tokens"), ({"temperature": -1.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"), ({"temperature": 1.0, "top_p": 2}, "top_p"),
    ({"temperature": 1.0, "top_k": 0}, "top_k"), ({"max_new_tokens": 10_000}, "context"),
])
def test_generate_refuses_bad_settings(course_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        course_model.generate("The capital of Texas is", **kwargs)


def test_token_input_errors(course_model):
    m = course_model
    with pytest.raises(ValueError, match="context of 256"):
        m("the " * 2000)  # text longer than the context: used to be an IndexError
    with pytest.raises(ValueError, match="no tokens"):
        m(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(TypeError, match="bool"):
        m(torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="list of strings"):
        m.to_tokens(5)
    with pytest.raises(TypeError, match="list of strings"):
        m.to_tokens(["a", 5])
    ids = m.to_tokens("The capital")
    torch.testing.assert_close(m(ids.int()), m(ids))  # int32 ids are fine


def test_layers_as_numpy_or_tensor_ints_but_not_bools(course_model):
    m = course_model
    with torch.no_grad():
        _, cache = m.run_with_cache("The capital of Texas is")
    ref = cache["resid_post", 2]
    for layer in (np.int64(2), torch.tensor(2), torch.tensor([2]), -2):
        assert cache["resid_post", layer] is ref
    for bad in (True, 2.0, "2", torch.tensor(2.0), None):
        with pytest.raises(KeyError, match="layer must be an int"):
            cache["resid_post", bad]
    with pytest.raises(ValueError, match="out of range: this model has 4 layers"):
        m.attention_weights(99)
    assert torch.equal(m.attention_weights(np.int64(1))["W_Q"], m.attention_weights(1)["W_Q"])


def test_hook_returning_another_dtype_is_a_clear_error(any_model):
    with pytest.raises(ValueError, match="float64.*out.to\\(x.dtype\\)"):
        any_model.run_with_hooks("hello", {("mlp_out", 1): lambda x: x.double()})
    assert not any_model._hook_fns


def test_a_failed_check_shows_its_message_not_the_answer(tmp_path):
    """In a kernel, a failed check prints its message alone: the traceback through the check's
    source would show the reference answer and the list of mistakes first. The full traceback
    is one call away, and the cell still counts as failed (Run All stops there)."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "import torch\nfrom mechinterp_course.checks import ch05\n"
        "def toy_forward(W, b, x):\n    h = torch.einsum('imn,bin->bim', W, x)\n"
        "    return torch.einsum('imn,bim->bin', W, h) + b  # forgot the ReLU",
        "ch05.check_toy_forward(toy_forward)",
        "def broken(W, b, x):\n    return W @ x  # a shape error in the learner's own code",
        "ch05.check_toy_forward(broken)",
        "import mechinterp_course as mc\nmc.checks.show_traceback()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    failed, crashed = nb.cells[1].outputs, nb.cells[3].outputs
    assert [o.output_type for o in failed] == ["error"]
    shown = "\n".join(failed[0].traceback)
    assert "No ReLU at the output" in shown and "show_traceback()" in shown
    for answer in ("ref.toy_forward", "torch.relu(linear)", "compare(", "mistakes"):
        assert answer not in shown  # neither the reference nor the list of mistakes
    shown = "\n".join(crashed[0].traceback)
    assert "your function raised RuntimeError" in shown
    assert "line 2 in broken: return W @ x" in shown  # the learner's own line, and only it
    full = "".join(o.get("text", "") for o in nb.cells[4].outputs)
    assert "in check_toy_forward" in full  # the curious can still see the check's code

    from nbclient.exceptions import CellExecutionError
    stops = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells[:2]])
    with pytest.raises(CellExecutionError, match="No ReLU"):  # Run All stops at the failure
        NotebookClient(stops, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
