"""ipywidgets explorers, each one line from a notebook.

Each view is drawn as a PNG into an `ipywidgets.Image`, so it shows the same in JupyterLab, Colab
and Binder, needs no JavaScript beyond ipywidgets' own, and can be checked without a browser
(tests change a control and read the image). Each explorer also has a `static()` figure, for
notebooks read on GitHub or run under nbval, where widgets do not render.
"""

from __future__ import annotations

import html
import io

import ipywidgets as w
import torch

from . import sae as sae_lib
from . import viz


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


class LatentBrowser(w.VBox):
    """Browse an SAE's latents: type a latent's number, or pick a world label to jump to the
    latent that detects it best (by AUROC), and see its dashboard (`viz.plot_latent`)."""

    PICK = "(jump to the best latent for a label)"

    def __init__(self, model, sae, data, latents: torch.Tensor | None = None, start: int = 0,
                 labels: dict[str, torch.Tensor] | None = None):
        self.model, self.sae, self.data = model, sae, data
        with torch.no_grad():
            self.latents = sae.encode(data.acts) if latents is None else latents
        self.labels = data.token_labels() if labels is None else labels
        n = self.latents.shape[1]
        self.latent = w.BoundedIntText(value=start, min=0, max=n - 1, description="latent")
        self.by_label = w.Dropdown(options=[self.PICK, *self.labels], description="label",
                                   layout=w.Layout(width="340px"))
        self.image = w.Image(format="png")
        self.info = w.HTML()
        self.latent.observe(lambda _: self.show(), names="value")
        self.by_label.observe(self._jump, names="value")
        super().__init__([w.HBox([self.latent, self.by_label]), self.info, self.image])
        self.show()

    def summary(self) -> sae_lib.LatentSummary:
        return sae_lib.summarise_latent(self.model, self.sae, self.data, self.latents,
                                        self.latent.value, labels=self.labels)

    def static(self):
        """The current latent's dashboard as a matplotlib figure."""
        return viz.plot_latent(self.summary())

    def show(self):
        s = self.summary()
        best = ", ".join(f"{html.escape(name)} {score:.2f}" for name, score in s.best_labels)
        self.info.value = (f"<b>latent {s.latent}</b>: fires on {s.fires:.1%} of tokens; "
                           f"best world labels by AUROC: {best}")
        self.image.value = _png(viz.plot_latent(s))

    def _jump(self, change):
        if change["new"] == self.PICK:
            return
        from .neurons import auroc

        scores = auroc(self.latents, self.labels[change["new"]])
        self.latent.value = int(scores.argmax())  # redraws through the observer


def latent_browser(model, sae, data, latents=None, start: int = 0, labels=None) -> LatentBrowser:
    """An SAE latent browser (see `LatentBrowser`). data: `neurons.collect(...)` at the SAE's
    site."""
    return LatentBrowser(model, sae, data, latents, start, labels)
