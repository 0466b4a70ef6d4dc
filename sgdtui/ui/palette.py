"""The command palette (ctrl+p or :): every action that works in the current mode, each once,
'Share string' and 'Export lane to PyTorch', plus 'Surface: ...' and 'Add lane: ...' entries found
by typing."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from textual.app import SystemCommand
from textual.command import CommandList, CommandPalette

from sgdtui.engine.optimizers import OPTIMIZERS
from sgdtui.mlp.datasets import DATASETS
from sgdtui.mlp.problem import ACTIVATIONS, NORMS
from sgdtui.ui.bindings import BINDINGS, action_name
from sgdtui.ui.mlp_actions import DATASET_KEYS, HIDDEN_PRESETS
from sgdtui.ui.screens import DismissOnce, dismissed_already

if TYPE_CHECKING:
    from sgdtui.ui.app import PlaygroundApp

def playground_commands(app: "PlaygroundApp", inherited: Iterable[SystemCommand]) -> Iterable[SystemCommand]:
    ours = []
    seen: set[str] = set()
    for binding in BINDINGS:
        name = action_name(binding.action)
        if name in ("quick_surface", "command_palette") or not app.action_available(name) or binding.description in seen:
            continue
        seen.add(binding.description)
        ours.append(SystemCommand(binding.description, f"key: {binding.key_display or binding.key}",
                                  lambda action=binding.action: app.run_action(action)))
    for command in inherited:  # Textual's own, less those a playground binding already offers (Quit)
        if command.title not in seen:
            yield command
    yield from ours
    yield SystemCommand("Share string", "the session as one URL-safe string: sgdtui --script-string S replays it",
                        lambda: app.run_worker(show_share_string(app), exclusive=False))
    if app.mode == "surface":
        yield SystemCommand("Export lane to PyTorch", "the selected lane as a runnable PyTorch program",
                            lambda: app.run_worker(export_selected_lane(app), exclusive=False))
    if app.action_available("pick_surface"):
        for surface in app.factory.registry:
            yield SystemCommand(f"Surface: {surface.name}", f"with its default race · {surface.description}",
                                lambda name=surface.name: app.switch_surface(name), discover=False)
            yield SystemCommand(f"Surface, keep lanes: {surface.name}", surface.description,
                                lambda name=surface.name: app.switch_surface(name, keep_lanes=True), discover=False)
    if app.action_available("quick_dataset"):
        for name in DATASET_KEYS:
            yield SystemCommand(f"Dataset: {name}", DATASETS[name], lambda name=name: app.switch_network(dataset=name))
        for hidden in HIDDEN_PRESETS:
            label = ",".join(map(str, hidden))
            yield SystemCommand(f"Hidden sizes: {label}", "every lane restarts on the new network",
                                lambda hidden=hidden: app.switch_network(hidden=list(hidden)))
        for activation in ACTIVATIONS:
            yield SystemCommand(f"Activation: {activation}", "every lane restarts on the new network",
                                lambda activation=activation: app.switch_network(activation=activation))
        for norm in NORMS:
            yield SystemCommand(f"Normalization: {norm}", "every lane restarts on the new network",
                                lambda norm=norm: app.switch_network(norm=norm))
    for name, spec in OPTIMIZERS.items():
        yield SystemCommand(f"Add lane: {name}", spec.description, lambda name=name: app.add_lane(name),
                            discover=False)


async def session_script_text(app: "PlaygroundApp") -> str | None:
    """The session so far as script text, from the App's own copy (never waits on the session)."""
    return app.script_text()


async def show_share_string(app: "PlaygroundApp") -> None:
    from sgdtui.engine.share import encode_text
    from sgdtui.ui.screens.share import ShareScreen

    text = await session_script_text(app)
    if text is not None:
        app.push_screen(ShareScreen(encode_text(text)))


async def deliver_session_script(app: "PlaygroundApp") -> str | None:
    """The session's script as a download (the `w` key when the playground runs in a browser)."""
    from datetime import datetime

    text = await session_script_text(app)
    if text is None:
        return None
    name = f"sgdtui-session-{datetime.now():%Y%m%d-%H%M%S}.toml"
    app.deliver_text(io.StringIO(text), save_filename=name)
    app.notify(f"{name}: sent to the browser as a download", timeout=5)
    return name


async def export_selected_lane(app: "PlaygroundApp") -> Path | str | None:
    """Write the selected lane as a PyTorch program: into the current folder, or as a download
    when the playground runs in a browser. Returns where it went."""
    from sgdtui.engine.export_torch import export_lane
    from sgdtui.engine.script import load_script

    lane = app.selected
    if lane is None:
        app.notify("no lane selected: press a to add one", severity="warning")
        return None
    text = await session_script_text(app)
    if text is None:
        return None
    try:
        script = load_script(tomllib.loads(text), text=text, registry=app.factory.registry)
        script.path = "a playground session"
        source = export_lane(script, lane)
    except ValueError as exc:
        app.notify(f"cannot export {lane}: {' '.join(str(exc).split())}", severity="error")
        return None
    name = f"sgdtui-{lane}-torch.py"
    if app.is_web:  # the browser's user has no shell on this machine: hand the file over
        app.deliver_text(io.StringIO(source), save_filename=name)
        app.notify(f"{name}: sent to the browser as a download", timeout=5)
        return name
    path, k = Path.cwd() / name, 2
    while path.exists():  # never overwrite an earlier export: name-2.py, name-3.py, ...
        path, k = Path.cwd() / f"sgdtui-{lane}-torch-{k}.py", k + 1
    path.write_text(source, encoding="utf-8")
    app.notify(f"lane {lane} written to {path} (run it with python)", timeout=6)
    return path


class PlaygroundPalette(DismissOnce, CommandPalette):
    """Textual's command palette, dismissed once only: two quick enters (or enter and escape in
    one burst of keys) would otherwise dismiss it twice, popping the screen beneath it or raising
    ScreenStackError with only the main screen left; and a search that ends after the palette
    closed draws nothing."""

    # The search runs in a worker that can finish after a quick escape has closed the palette; it
    # then fills a list that is gone (NoMatches, which would end the app): a closed palette shows nothing.
    def _refresh_command_list(self, *args, **kwargs) -> None:
        if not dismissed_already(self):
            super()._refresh_command_list(*args, **kwargs)

    def _action_command_list(self, action: str) -> None:
        # A page key right after typing reaches a list whose lines are not laid out yet (Textual's
        # OptionList then raises KeyError): there is nothing to page through yet.
        if action.startswith("page_"):
            command_list = self.query_one(CommandList)
            if (command_list.highlighted or 0) not in getattr(command_list, "_index_to_line", {}):
                return
        super()._action_command_list(action)

    def _watch__list_visible(self) -> None:
        if not dismissed_already(self):
            super()._watch__list_visible()
