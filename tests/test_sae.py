"""Options of mechinterp_course.sae that the SAELens comparison relies on."""

import torch

from mechinterp_course import sae


def test_rescaled_latents_ignore_decoder_norms():
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    plain = sae.SAE(16, 64, k=4, seed=0)
    rescaled = sae.SAE(16, 64, k=4, seed=0, rescale_by_decoder_norm=True)
    before = rescaled(x)[0]
    with torch.no_grad():  # stretch some decoder rows: a rescaled SAE reconstructs the same
        for m in (plain, rescaled):
            m.W_dec[:10] *= 5
            m.W_enc[:, :10] /= 5  # the same pre-activations for the plain SAE, too
    assert torch.allclose(rescaled(x)[0], before, atol=1e-5)
    assert not torch.allclose(plain(x)[0], sae.SAE(16, 64, k=4, seed=0)(x)[0], atol=1e-3)


def test_rescaling_is_a_no_op_with_unit_decoder_rows():
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    a = sae.SAE(16, 32, k=4, seed=2)
    b = sae.SAE(16, 32, k=4, seed=2, rescale_by_decoder_norm=True)
    with torch.no_grad():
        for m in (a, b):
            m.W_dec /= m.W_dec.norm(dim=1, keepdim=True)
    assert torch.allclose(a(x)[0], b(x)[0], atol=1e-5)


def grad_norms(max_grad_norm):
    """Total gradient norm seen by each optimiser step (read after the step)."""
    norms = []

    def step(model, opt, x, l1_coeff):
        x_hat, _ = model(x)
        loss = (x_hat - x).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        norms.append(float(torch.cat([p.grad.flatten() for p in model.parameters()]).norm()))
        return loss.detach()

    features = sae.synthetic_features(32, 16)
    model = sae.SAE(16, 64, k=4, seed=0)
    sae.train(model, sae.synthetic_batches(features, 64), steps=5, progress=False,
              step_fn=step, max_grad_norm=max_grad_norm)
    return norms


def test_max_grad_norm_clips_every_step():
    assert max(grad_norms(None)) > 0.05
    assert max(grad_norms(0.01)) <= 0.01 + 1e-6


def test_topk_forward_matches_the_dense_path_and_its_gradients():
    """forward() decodes from the k winners only; it must give what decode(encode(x)) gives,
    gradients included."""
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(3))
    for rescale in (False, True):
        fast = sae.SAE(16, 96, k=5, seed=4, rescale_by_decoder_norm=rescale)
        dense = sae.SAE(16, 96, k=5, seed=4, rescale_by_decoder_norm=rescale)
        with torch.no_grad():
            for m in (fast, dense):
                m.b_dec.normal_(generator=torch.Generator().manual_seed(5))
                m.b_enc.normal_(generator=torch.Generator().manual_seed(6))
        x_hat, f = fast(x)
        f_dense = dense.encode(x)
        x_dense = dense.decode(f_dense)
        assert torch.allclose(f, f_dense, atol=1e-5) and torch.allclose(x_hat, x_dense, atol=1e-5)
        (x_hat - x).pow(2).sum().backward()
        (x_dense - x).pow(2).sum().backward()
        for name, p in fast.named_parameters():
            q = dict(dense.named_parameters())[name]
            assert torch.allclose(p.grad, q.grad, atol=1e-4), name


def test_training_works_where_a_chapter_turned_gradients_off():
    """Chapters call torch.set_grad_enabled(False) to read the model; training an SAE there must
    still learn, not fail on a tensor without a gradient."""
    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
    model = sae.SAE(8, 16, k=2, seed=0)
    before = model.W_dec.detach().clone()
    with torch.no_grad():
        result = sae.train(model, sae.batches_from(x, 64), steps=5, progress=False)
        assert not torch.is_grad_enabled()  # the caller's setting, back after training
    assert not torch.equal(before, model.W_dec.detach()) and len(result.losses) == 5
