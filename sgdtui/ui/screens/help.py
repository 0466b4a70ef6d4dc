"""The help screen: every binding, and what each hyperparameter means."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from sgdtui.ui.screens import Modal

HYPERPARAMETERS: tuple[tuple[str, str], ...] = (
    ("lr", "learning rate η: the step size. Shown effective (after schedule and coupling), base in brackets."),
    ("β", "the lane's decay: momentum μ (sgd, momentum, nesterov), the EMA β (ema-momentum, β1 of Adam's"
          " family), α (rmsprop), or 1-1/N (adam-minbias). Near 1 = long memory of past gradients."),
    ("batch", "minibatch size B: averaging B examples divides the gradient noise variance by B."),
    ("schedule", "lr(t) as a function of the step count: step, cosine, warm-up, cyclic, one-cycle, ..."),
    ("coupling", "how lr follows the batch: none (η fixed), linear (η = B·η₀), sqrt (η = √B·η₀),"
                 " momentum (η = (1-μ)·B·η₀; shown \"momentum (μ=0)\" for a lane without heavy-ball"
                 " momentum, where it equals linear), adam (ε = ε₀√B, η = ε·B·η₀, EMA windows N₀/B:"
                 " the course's Adam reparameterization; sqrt is the rule that keeps Adam's temperature)."),
    ("noise", "std of Gaussian gradient noise per example (divided by √B): makes any surface stochastic."),
    ("T", "the course's temperature η_eff/B (×1/(1-μ) with heavy-ball momentum; η_eff = η/(√v̂+ε) for"
          " Adam's family, averaged over coordinates): what coupling rules hold fixed. Status line."),
    ("T_G", "the Gibbs temperature: the run samples exp(-L/T_G) at equilibrium. σ²·T/2 with gradient noise σ"
            " (n/N), plus T for SGLD; '-' where no such density exists (LARS, LAMB, minibatch data noise)."
            " '!' marks a step past 2/λmax at the lane's point: the coupling rules stop holding there."),
    ("Σlr, Σlr²", "Robbins-Monro partial sums: a schedule converges when Σlr grows without bound and Σlr²"
                  " stays finite (status line, summary.json)."),
    ("λ", "weight decay, an L2 pull of every weight toward 0, any optimizer, both modes (d: 0 -> 1e-4 ->"
          " ×10^¼ ..., D back); MLP mode shows it in the table."),
    ("λη", "MLP mode: intrinsic learning rate η·λ; with normalization it sets the equilibrium of ‖w‖."),
    ("η/‖w‖²", "MLP mode, normalized nets: the effective lr of each weight matrix feeding a norm layer."),
    ("E‖ĝ−g‖²", "MLP mode: gradient noise, squared distance of a minibatch gradient from the full one at the"
                 " lane's batch size (estimated about twice a second)."),
)

NOTES = (
    "tab / shift+tab select lanes: they take priority over Textual's focus cycling (nothing here needs focus).",
    "ctrl+p opens the command palette (every action, surface and optimizer), so no playground key uses it.",
    "Every change lands at the next step and is recorded: w writes the session as a replayable script.",
    "m switches between surface and MLP mode: it starts a new session with the other mode's default race"
    " (paused); the current lanes and their history are dropped, so press w first to keep them."
    " With --record, m first writes the outgoing session next to the record file (run.surface.toml,"
    " run.mlp.toml, ...); the session open at exit goes to the record file itself.",
    "MLP mode: decision boundary of the selected lane over the data (the fit for sine), train loss"
    " (20-step mean; the selected lane's val loss in white) and val accuracy. v computes the selected"
    " lane's loss slice through its weights, V switches random/pca directions. Surface keys (1-9, S, e,"
    " arrows, z/Z, n/N) only say that they need surface mode.",
)


def help_markup(bindings: list[tuple[str, str]]) -> str:
    """Plain text of the help page (also used by the tests)."""
    width = max((len(key) for key, _ in bindings), default=4)
    lines = ["KEYS", ""]
    lines += [f"  {key:<{width}}  {description}" for key, description in bindings]
    lines += ["", "HYPERPARAMETERS", ""]
    lines += [f"  {name:<8}  {text}" for name, text in HYPERPARAMETERS]
    lines += ["", "NOTES", ""]
    lines += [f"  {note}" for note in NOTES]
    return "\n".join(lines)


class HelpScreen(Modal[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.text = help_markup(bindings)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static("sgdtui · help  (escape closes)", id="help-title")
            yield Static(self.text, markup=False)
