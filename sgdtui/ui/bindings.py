"""The playground's key bindings (also listed in the help screen and the command palette)."""

from __future__ import annotations

from textual.binding import Binding

# Keys 1-9, in this order where the surfaces exist; the rest of the registry fills any gap.
QUICK_SURFACES = ("pathological", "rosenbrock", "himmelblau", "ill-conditioned", "saddle",
                  "beale", "rastrigin", "plateau", "linear-regression")

def action_name(action: str) -> str:
    """"lr(1)" -> "lr": the action a binding runs, without its arguments."""
    return action.split("(", 1)[0]


B = Binding
BINDINGS = [
    B("space", "toggle_run", "Run"),
    B("full_stop", "step_once", "Step", key_display="."),
    B("plus,equals_sign", "lr(1)", "lr ×10^¼", show=False, key_display="+"),
    B("minus", "lr(-1)", "lr ÷10^¼", show=False, key_display="-"),
    B("right_square_bracket", "beta(1)", "β up", show=False, key_display="]"),
    B("left_square_bracket", "beta(-1)", "β down", show=False, key_display="["),
    B("b", "batch(1)", "batch ×2", show=False),
    B("B", "batch(-1)", "batch ÷2", show=False),
    B("s", "schedule", "Schedule", show=False),
    B("c", "coupling", "Coupling", show=False),
    B("d", "weight_decay(1)", "weight decay λ up", show=False),
    B("D", "weight_decay(-1)", "weight decay λ down", show=False),
    B("n", "noise(1)", "noise up", show=False),
    B("N", "noise(-1)", "noise down", show=False),
    B("tab", "select(1)", "Next lane", priority=True),
    B("shift+tab", "select(-1)", "Previous lane", show=False, priority=True),
    B("a", "add_lane", "Add lane"),
    B("x", "remove_lane", "Remove lane", show=False),
    B("r", "reset", "Reset", show=False),
    B("u", "restore_lane", "lane settings back to its start", show=False),
    *[B(str(k), f"quick_surface({k - 1})", f"surface {k}", show=False) for k in range(1, 10)],
    *[B(str(k), f"quick_dataset({k - 1})", f"dataset {k} (MLP)", show=False) for k in range(1, 7)],
    B("h", "cycle_hidden", "hidden sizes 16 → 32,32 → 64,64 → 32,32,32 → 128 (MLP)", show=False),
    B("f", "cycle_activation", "activation relu → tanh → gelu (MLP)", show=False),
    B("o", "cycle_norm", "normalization none → batchnorm → layernorm (MLP)", show=False),
    B("S", "pick_surface", "Surface"),
    B("e", "expression", "Expression", show=False),
    B("left", "pan(-1,0)", "pan left", show=False),
    B("right", "pan(1,0)", "pan right", show=False),
    B("up", "pan(0,1)", "pan up", show=False),
    B("down", "pan(0,-1)", "pan down", show=False),
    B("z", "zoom(1)", "zoom in", show=False),
    B("Z", "zoom(-1)", "zoom out", show=False),
    B("0", "reset_view", "view back to the surface's own", show=False),
    B("p", "crosshair", "crosshair: start the lane at a point (arrows, p/enter)", show=False),
    B("enter", "place_start", "start the lane at the crosshair", show=False),
    B("escape", "cancel_crosshair", "put the crosshair away", show=False),
    B("l", "toggle_log", "log loss", show=False),
    B("m", "switch_mode", "Surface/MLP mode", show=False),
    B("v", "landscape", "loss slice of the lane (MLP)", show=False),
    B("V", "landscape_directions", "slice directions random/pca (MLP)", show=False),
    B("i", "intrinsic_view", "intrinsic lr: η/‖W‖² over time and per-layer read-outs (MLP)", show=False),
    B("less_than_sign", "speed(-1)", "slower", show=False, key_display="<"),
    B("greater_than_sign", "speed(1)", "faster", show=False, key_display=">"),
    B("P", "phase", "Phase diagram (surface mode)", show=False),
    B("G", "toggle_density", "density view: the lane's stationary histogram against exp(-L/T_G) (surface)", show=False),
    B("K", "toggle_burn_in", "burn-in: stationary statistics of the lane from now on, or off (surface)", show=False),
    B("W", "toggle_swa", "SWA: average the lane's iterate (MLP: weights) from now on (or off)", show=False),
    B("F", "toggle_flow", "gradient-flow reference beside the lane's path (surface)", show=False),
    B("R", "apply_range_test", "the range test's suggested lr on the other lanes", show=False),
    B("w", "write_script", "Write script"),
    B("ctrl+r", "restart_session", "restart the session from its script (when it stopped answering)", show=False,
      key_display="^r"),
    B("question_mark", "help", "Help", key_display="?"),
    # Textual's own palette binding (it adds none once the palette has a binding here) ...
    B("ctrl+p", "command_palette", "palette", show=False, key_display="^p", priority=True,
      tooltip="Open the command palette"),
    # ... and a key that a browser leaves alone (it may keep ctrl+p, print, for itself).
    B("colon", "command_palette", "command palette: every action, surface and optimizer (as ^p)", show=False,
      key_display=":"),
    B("q", "quit", "Quit"),
]
