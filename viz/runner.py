"""One browser session's run: the model, its lock, the play loop, and what the page is sent.

Why a loop of its own rather than Solara re-rendering the page each step: a render
per frame is what made the old page overrun ("Too many renders triggered") and freeze
its controls. Here one thread per session steps the model at the chosen speed and, at
most :data:`FRAME_INTERVAL` apart, sends the browser a *frame* — the data of one week,
as a change since the last frame (viz/frames.py). A new frame is sent only while fewer
than :data:`IN_FLIGHT` sent frames wait to be drawn by the browser (or once
:data:`ACK_TIMEOUT` has passed), so frames are dropped, never queued, whatever the load.
Solara re-renders a control only when something it shows changes (see
:meth:`Run.subscribe`), never per frame.

Every read or write of a model happens under the session's lock. User actions are
dated and journalled (viz/journal.py); lever moves wait for the week boundary, so a
run of key presses on a slider is one move, not one per press.

A shared link's replay runs in the same loop, in slices, as a run that plays: it waits
for a free slot under the server's cap and stops with its page, so opening a link costs
the server no more than pressing Play. The lever controls are the browser's own
(viz/levers.py): the run sends them its state (:meth:`Run.lever_state`) and never
re-renders them.

Server-wide, :class:`Registry` caps how many runs play or replay at once (its limits come
from viz/server.py) and a watchdog pauses a run whose page has gone (kernel
disconnected, or no heartbeat from the page).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from isk_defection.model import DefectionModel
from isk_defection.model.groups import GROUP_NAMES
from isk_defection.viz import columns as cols
from isk_defection.viz.ensemble import Ensemble, member_settings
from isk_defection.viz.frames import FrameSource, history_rows, people_per_agent, status
from isk_defection.viz.journal import (
    ADAPTIVE,
    DECAPITATION,
    MAX_WEEKS,
    RELEASE,
    Action,
    Settings,
    apply,
    build_model,
    replay,
    to_query,
)
from isk_defection.viz.server import Limits, limits
from isk_defection.viz.style import group_label, lever_help, lever_label

logger = logging.getLogger(__name__)

FRAME_INTERVAL = 0.1  # at most ten visible updates a second
IN_FLIGHT = 2  # frames sent but not yet drawn, at most (then the next frame waits)
ACK_TIMEOUT = 1.0  # send the next frame anyway if the browser has not confirmed the last
SETTLE = 0.3  # a slider value must rest this long before it becomes a move while playing
MAX_BACKLOG = 0.5  # seconds of missed steps made up after a stall; older ones are dropped
DEFAULT_SPEED, MAX_SPEED = 20, 100  # weeks per second
TOPICS = ("state", "levers", "actions")
# Pause rules' defaults: more than 200 people defecting in a week (in the baseline at
# 2,000 agents, about 1 week in 100 over 300 weeks), a group's defected share passing 10 %,
# or week 520 (ten years).
DEFAULT_PEOPLE, DEFAULT_SHARE, DEFAULT_WEEK = 200, 0.10, 520
LEVER_REFRESH = 0.5  # seconds between checks that the sliders still show the levers in force
REPLAY_SLICE = 0.05  # seconds of replay work between frames and checks (a link replays in slices)


@dataclass
class PauseRules:
    """Pause on an event: more than ``people`` defecting in a week, or a group passing ``share``.

    Counted in people, as the status bar and charts are: one agent stands for ~80 people
    at the page's default 2,000 agents, so a rule in agents would fire on any defection.
    """

    people: int | None = None
    share: float | None = None  # of a group's members who have defected, in [0, 1]
    week: int | None = None  # pause on reaching this week (stop at week N)

    def check(self, model: DefectionModel, before: Mapping[str, Any]) -> str:
        """Why the run should pause after this week ("" if it should not)."""
        stats = model.stats
        if self.week is not None and model.week == self.week:
            return f"Paused at week {model.week:,}, as set under 'Pause on an event'."
        defected = cols.number(stats.get("defections")) or 0.0
        if self.people is not None and round(defected) > self.people:
            return (
                f"Paused at week {model.week}: {defected:,.0f} people defected this week, "
                f"more than {self.people:,}."
            )
        if self.share is not None:
            for group in GROUP_NAMES:
                key = f"{group}_defection_rate"
                now, then = cols.number(stats.get(key)), cols.number(before.get(key))
                if now is not None and now >= self.share and (then is None or then < self.share):
                    return (
                        f"Paused at week {model.week}: {now:.0%} of {group_label(group)} "
                        f"have defected, passing {self.share:.0%}."
                    )
        return ""


@dataclass
class Comparison:
    """A second run beside the first: the same recipe without some actions, or another scenario."""

    label: str
    settings: Settings
    actions: list[Action]
    fork_week: int
    model: DefectionModel
    sent_rows: int = 0


class Registry:
    """Every live run of this server: the cap on playing runs and the orphan watchdog."""

    def __init__(self, max_playing: int | None = None, limits: Limits | None = None) -> None:
        self._limits = limits
        self._max_playing = max_playing
        self._runs: weakref.WeakSet[Run] = weakref.WeakSet()
        self._playing: weakref.WeakSet[Run] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None

    @property
    def limits(self) -> Limits:
        """The server's limits (read from the environment on first use)."""
        return self._limits or limits()

    @property
    def max_playing(self) -> int:
        """Runs that may play, or replay a link, at once."""
        return self._max_playing or self.limits.max_playing

    def add(self, run: Run) -> None:
        """Register ``run`` and make sure the watchdog is watching."""
        with self._lock:
            self._runs.add(run)
            if self._watchdog is None or not self._watchdog.is_alive():
                self._watchdog = threading.Thread(
                    target=self._watch, name="defection-watchdog", daemon=True
                )
                self._watchdog.start()

    def claim(self, run: Run) -> bool:
        """Let ``run`` play if fewer than the cap are playing."""
        with self._lock:
            if run in self._playing:
                return True
            if len(self._playing) >= self.max_playing:
                return False
            self._playing.add(run)
            return True

    def release(self, run: Run) -> None:
        """``run`` no longer plays."""
        with self._lock:
            self._playing.discard(run)

    def playing(self) -> list[Run]:
        """The runs playing now."""
        with self._lock:
            return list(self._playing)

    def runs(self) -> list[Run]:
        """Every run not yet closed."""
        with self._lock:
            return [run for run in self._runs if not run.closed]

    def sweep(self, now: float | None = None) -> None:
        """Pause runs whose page has gone; close runs whose kernel has closed."""
        now = time.monotonic() if now is None else now
        for run in self.runs():
            run.watch(now)

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            try:
                self.sweep()
            except Exception:  # the watchdog must outlive any one run's trouble
                logger.exception("watchdog")


REGISTRY = Registry()


@dataclass(eq=False)
class Run:
    """A session's run and everything that drives it; thread-safe."""

    settings: Settings = field(default_factory=Settings)
    actions: list[Action] = field(default_factory=list)
    week: int = 0  # replay the actions to this week first (a shared link)
    registry: Registry = field(default_factory=lambda: REGISTRY)
    context: Any = None  # Solara's kernel context of the session, if any
    clock: Callable[[], float] = time.monotonic
    threaded: bool = True  # False: no play loop (tests drive _advance and frame by hand)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self._wake = threading.Condition(threading.Lock())
        if not 0 <= self.week <= MAX_WEEKS:
            raise ValueError(f"week: must be in 0-{MAX_WEEKS} (got {self.week})")
        self.model = build_model(self.settings)
        self._script = sorted(self.actions, key=lambda a: a.week)  # a link's actions, to replay
        self.target = self.week  # the link's week: the loop replays to it, counted as playing
        self.actions = []
        self.source = FrameSource(self.model)
        self.speed: float = DEFAULT_SPEED
        self.playing = False
        self.closed = False
        self.message = ""  # information for the user (why a run paused, a refusal)
        self.error = ""  # something went wrong; the run goes on
        self.rules = PauseRules()
        self.compare: Comparison | None = None
        self.ensemble: Ensemble | None = None
        self.building_ensemble = ""  # the spread over seeds being built (its label)
        self.building = ""  # a comparison run being built (its label)
        self._pending: dict[str, tuple[float, float]] = {}  # lever -> (value, time set)
        self._events: dict[str, float] = {}  # RELEASE / ADAPTIVE -> value, at the next week
        self._listeners: list[Callable[[set[str]], None]] = []
        self._sender: Callable[[dict], None] | None = None
        self._config_sender: Callable[[dict], None] | None = None
        self._sent_seq = self._acked_seq = 0
        self._sent_at = -1e9
        self._sent_week = -1
        self._dirty = True
        self._full = True
        self._marks_sent = -1
        self.heartbeat_at: float | None = None
        self._gone_since: float | None = None
        self.frames_sent = 0
        self.stepped_at = 0.0
        self._levers_shown: dict[str, Any] = {}
        self._levers_checked = -1e9
        self.registry.add(self)
        if not self.threaded:
            self._replay_all()
        self._thread = threading.Thread(target=self._loop, name="defection-run", daemon=True)
        if self.threaded:
            self._thread.start()
        if self.context is not None:
            with contextlib.suppress(Exception):
                self.context.on_close(self.close)

    # ---- listeners: the page's controls re-render when these change -----------------------
    def subscribe(self, listener: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``listener(topics)`` when what the controls show changes; returns an unsubscribe.

        Topics: ``state`` (playing, messages, comparison), ``levers`` (what the lever
        controls show), ``actions`` (the journal). A control re-renders only for its own
        topic, so a step that changes nothing it shows costs no render.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, *topics: str) -> None:
        chosen = set(topics or TOPICS)
        if "levers" in chosen:
            self._levers_shown = self.lever_state()
        for listener in list(self._listeners):
            try:
                listener(chosen)
            except Exception:
                logger.exception("a listener failed")

    def lever_state(self) -> dict[str, Any]:
        """What the lever controls show: values, who sets them, pending events, the switch."""
        return {
            "levers": [
                {"name": lever, "label": lever_label(lever), "help": lever_help(lever),
                 "value": round(self.lever_value(lever), 2), "source": self.lever_source(lever)}
                for lever in cols.levers(self.model)
            ],
            "release": self.release_pending(),
            "decapitation": self.event_pending(DECAPITATION),
            "can_kill": self.can_kill_isk_leader(),
            "adaptive": self.adaptive_shown(),
        }  # fmt: skip

    def _levers_moved(self) -> None:
        """Re-render the lever controls if what they show has changed."""
        if self.lever_state() != self._levers_shown:
            self._changed("levers")

    # ---- the browser side -------------------------------------------------------------------
    def attach(self, send_frame: Callable[[dict], None], send_config: Callable[[dict], None]):
        """Send frames to a view (the LiveWidget); it gets the config and a full frame first."""
        self._sender, self._config_sender = send_frame, send_config
        self.resync()

    def detach(self, send_frame: Callable[[dict], None]) -> None:
        """Stop sending to a view that has gone."""
        if self._sender is send_frame:
            self._sender = self._config_sender = None

    def resync(self) -> None:
        """The browser asks to start over: send the config and a full frame."""
        with self._wake:
            self._full = True
            self._dirty = True
            self._acked_seq = self._sent_seq
            self._wake.notify()

    def acked(self, seq: int) -> None:
        """The browser has drawn frame ``seq``."""
        with self._wake:
            self._acked_seq = max(self._acked_seq, int(seq))
            self._wake.notify()

    def heartbeat(self) -> None:
        """The page is alive (sent by it every few seconds)."""
        self.heartbeat_at = self.clock()

    # ---- controls ---------------------------------------------------------------------------
    @property
    def replaying(self) -> bool:
        """Whether a link is still being replayed to its week."""
        return not self.closed and self.model is not None and self.model.week < self.target

    def play(self) -> bool:
        """Start playing, if the server's cap on playing runs allows."""
        if self.closed:
            return False
        if self.replaying:
            self.message = (
                f"The link is still replaying (week {self.model.week:,} of {self.target:,})."
            )
            self._changed("state")
            return False
        if not self.registry.claim(self):
            cap = self.registry.max_playing
            self.message = (
                f"The server is already playing {cap} runs (its limit, set by "
                "DEFECTION_MAX_PLAYING). Try again in a moment, or use Step."
            )
            self._changed("state")
            return False
        self.message = ""
        self.playing = True
        self._poke()
        self._changed("state")
        return True

    def pause(self, message: str = "") -> None:
        """Stop playing (the current week stays)."""
        was = self.playing
        self.playing = False
        self.registry.release(self)
        if message:
            self.message = message
        self._poke()
        if was or message:
            self._changed("state")

    def toggle(self) -> None:
        """Play if paused, pause if playing (the Space key)."""
        if self.playing:
            self.pause()
        else:
            self.play()

    def set_speed(self, speed: float) -> None:
        """Weeks per second while playing."""
        self.speed = min(max(float(speed), 1.0), MAX_SPEED)
        self._poke()

    def step(self) -> None:
        """One week, by hand (ignored while playing or replaying a link)."""
        if self.playing or self.replaying:
            return
        self._guarded(self._advance, force=True)
        self._poke()
        self._levers_moved()

    def move_lever(self, lever: str, value: float) -> None:
        """Set ``lever`` from the next week on; moves within one week are one move."""
        if lever not in cols.levers(self.model):
            raise ValueError(f"lever: must be one of {', '.join(cols.levers(self.model))}")
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{lever}: must be in [0, 1] (got {value})")
        self._pending[lever] = (float(value), self.clock())
        self._poke()
        self._changed("levers")

    def release_prisoners(self) -> None:
        """Free IS-K and TTP prisoners next week."""
        self._events[RELEASE] = 1.0
        self._poke()
        self._changed("levers")

    def kill_isk_leader(self) -> None:
        """An IS-K leader is killed next week (IS-K's attack capacity drops for a time)."""
        self._events[DECAPITATION] = 1.0
        self._poke()
        self._changed("levers")

    def can_kill_isk_leader(self) -> bool:
        """Whether the model has IS-K leadership losses."""
        return hasattr(self.model, "kill_isk_leader")

    def event_pending(self, name: str) -> bool:
        """Whether event ``name`` is set for next week."""
        return name in self._events

    def set_adaptive(self, on: bool) -> None:
        """The adaptive leadership rule sets the levers from next week on (or stops)."""
        if bool(on) == self.adaptive and ADAPTIVE in self._events:
            del self._events[ADAPTIVE]
        elif bool(on) != self.adaptive or ADAPTIVE in self._events:
            self._events[ADAPTIVE] = 1.0 if on else 0.0
        self._poke()
        self._changed("levers")

    @property
    def adaptive(self) -> bool:
        """Whether the adaptive rule is in force now."""
        return cols.is_adaptive(self.model)

    def adaptive_shown(self) -> bool:
        """The adaptive switch as the user set it (in force from next week)."""
        return bool(self._events.get(ADAPTIVE, self.adaptive))

    def release_pending(self) -> bool:
        """Whether a prisoner release is set for next week."""
        return RELEASE in self._events

    def lever_value(self, lever: str) -> float:
        """The lever as the user sees it: a pending move, else the value in force next week."""
        if lever in self._pending:
            return self._pending[lever][0]
        with self.lock:
            return float(self.model.policy.levers_at(self.model.week + 1)[lever])

    def lever_source(self, lever: str) -> str:
        """Who sets the lever now, in words: the user, the scenario timeline or the rule."""
        if lever in self._pending:
            return "your move, from next week"
        if self.adaptive and lever in _adaptive_levers():
            return "set each week by the adaptive rule"
        mine = [a for a in self.actions if a.name == lever]
        if mine:
            return f"set by you in week {mine[-1].week}"
        schedule = self.model.policy.schedules[lever]
        ahead = [
            (w, v)
            for w, v in zip(schedule.weeks, schedule.values, strict=True)
            if w > self.model.week
        ]
        if len(schedule.values) == 1:
            return "scenario: constant"
        if ahead:
            week, value = ahead[0]
            return f"scenario timeline: {value:.2f} by week {week:g}"
        return "scenario timeline: final level"

    def people_per_agent(self) -> float:
        """People one agent stands for on average at the start of this run."""
        with self.lock:
            return people_per_agent(self.model)

    def set_rules(self, rules: PauseRules) -> None:
        """Pause on these events from now on."""
        self.rules = rules

    def reset(self, settings: Settings) -> None:
        """A new run with ``settings`` (ValueError: the current run goes on)."""
        fresh = build_model(settings)
        self.pause()
        with self.lock:
            self.settings, self.model, self.actions = settings, fresh, []
            self.target, self._script = 0, []
            self.source = FrameSource(fresh)
            self._full = True
            self.compare = self.ensemble = None
            self._pending.clear()
            self._events.clear()
            self.message = self.error = ""
        self.resync()
        self._changed()

    # ---- comparison -------------------------------------------------------------------------
    def start_compare(self, leave_out: list[int] | None = None, preset: str | None = None) -> None:
        """Build a second run beside this one, in the background; it then steps in lockstep.

        ``leave_out``: indices of this run's actions the comparison run does without (a
        fork: "what if I had not moved this lever?"; none: a copy that later moves do not
        touch); ``preset``: another scenario with the same seed and population.
        """
        if self.building:
            raise ValueError(f"a comparison run is already being built ({self.building})")
        with self.lock:
            settings, actions, week = self.settings, list(self.actions), self.model.week
        if preset is not None:
            settings = replace(settings, preset=preset)
            kept, label = [], f"scenario {preset}, same seed"
        else:
            skip = set(leave_out or [])
            kept = [a for i, a in enumerate(actions) if i not in skip]
            dropped = [actions[i].describe() for i in sorted(skip) if i < len(actions)]
            label = "without " + "; ".join(dropped) if dropped else f"copy forked at week {week}"
        fork = min([actions[i].week for i in leave_out or [] if i < len(actions)], default=week)
        if preset is not None:
            fork = 0
        self.building = label
        self._changed("state")
        self._beside("building", "The comparison run", self._build_compare,
                     label, settings, kept, week, fork)  # fmt: skip

    def _beside(self, flag: str, what: str, build: Callable[..., None], *args: Any) -> None:
        """Build a side run in a thread of its own; ``flag`` names it while it is built."""

        def work() -> None:
            try:
                build(*args)
            except Exception as exc:
                logger.exception("building a side run")
                self.error = f"{what} could not be built: {exc}"
            finally:
                setattr(self, flag, "")
                self._poke()
                self._changed("state")

        threading.Thread(target=work, daemon=True).start()

    def _build_compare(self, label, settings, actions, week, fork) -> None:
        model = replay(settings, [a for a in actions if a.week <= week], week, lambda: self.closed)
        if self.closed:
            return
        with self.lock:  # catch up with the main run, which may have gone on meanwhile
            _catch_up(model, actions, self.model.week)
            self.compare = Comparison(label, settings, actions, fork, model)
            self._full = True  # the browser starts both runs' series afresh

    # ---- the spread over seeds -----------------------------------------------------------
    def start_ensemble(self, members: int, posterior: bool = False) -> None:
        """Run ``members`` other seeds beside this run (built in the background, then lockstep).

        ``posterior``: each member also draws the uncertain parameters from the server's
        posterior file (``DEFECTION_POSTERIOR``).
        """
        if self.building_ensemble:
            raise ValueError("the spread over seeds is already being built")
        path = self.registry.limits.posterior if posterior else ""
        if posterior and not path:
            raise ValueError("no posterior file: start the server with DEFECTION_POSTERIOR=FILE")
        with self.lock:
            chosen = member_settings(self.settings, int(members), path)
            actions, week = list(self.actions), self.model.week
        seeds = f"{chosen[0].seed}-{chosen[-1].seed}"
        label = (
            f"{len(chosen)} posterior draws (seeds {seeds})"
            if path
            else f"{len(chosen)} other seeds ({seeds})"
        )
        self.building_ensemble = label
        self._changed("state")
        self._beside("building_ensemble", "The spread over seeds", self._build_ensemble,
                     label, chosen, actions, week)  # fmt: skip

    def _build_ensemble(self, label: str, chosen: list[Settings], actions, week: int) -> None:
        models = []
        for settings in chosen:
            models.append(replay(settings, actions, week, lambda: self.closed))
            if self.closed:
                return
        with self.lock:  # catch up with the watched run, which may have gone on
            for model in models:
                _catch_up(model, self.actions, self.model.week)
            self.ensemble = Ensemble(label, models)
            self._full = True

    def stop_ensemble(self) -> None:
        """Drop the spread over seeds."""
        self._drop("ensemble")

    def stop_compare(self) -> None:
        """Drop the comparison run."""
        self._drop("compare")

    def _drop(self, side: str) -> None:
        """Drop a side run (``compare`` or ``ensemble``); the browser starts its series afresh."""
        with self.lock:
            setattr(self, side, None)
            self._full = True
        self._poke()
        self._changed("state")

    # ---- the loop ---------------------------------------------------------------------------
    def close(self) -> None:
        """End the run for good (the page's kernel closed): stop the thread, free the model."""
        self.closed = True
        self.pause()
        self._listeners.clear()
        self._sender = self._config_sender = None
        self._poke()

    def watch(self, now: float) -> None:
        """The watchdog's check: pause if the page is gone, close if its kernel closed."""
        context = self.context
        if context is not None:
            closed = getattr(context, "closed_event", None)
            if closed is not None and closed.is_set():
                self.close()
                return
            statuses = getattr(context, "page_status", {})
            connected = any(getattr(s, "value", s) == "connected" for s in statuses.values())
            if connected:
                self._gone_since = None
            elif self._gone_since is None:
                self._gone_since = now
        limits = self.registry.limits
        busy = self.playing or self.replaying
        if (
            busy
            and self._gone_since is not None
            and now - self._gone_since >= limits.disconnect_grace
        ):
            self.stop_replay()
            self.pause("Paused: the page was disconnected.")
            logger.warning("paused a run whose page disconnected (week %d)", self.model.week)
        beat = self.heartbeat_at
        if self.playing and beat is not None and now - beat > limits.heartbeat_timeout:
            self.pause("Paused: the page stopped answering.")
            logger.warning("paused a run whose page sent no heartbeat (week %d)", self.model.week)

    def stop_replay(self) -> None:
        """Give up replaying a link where it has got to (its page has gone)."""
        with self.lock:
            if self.model is not None:
                self.target = min(self.target, self.model.week)
        if not self.playing:
            self.registry.release(self)

    def _replay_all(self) -> None:
        """Replay a link to its week at once (no loop: tests drive the run by hand)."""
        while self.replaying:
            self._replay_slice(float("inf"))

    def _replay_slice(self, budget: float) -> None:
        """Replay the link's weeks for up to ``budget`` seconds, its actions at their weeks."""
        started = self.clock()
        with self.lock:
            model = self.model
            while model.week < self.target and not self.closed:
                while self._script and self._script[0].week <= model.week + 1:
                    action = self._script.pop(0)
                    if action.week == model.week + 1:
                        apply(model, action)
                        self.actions.append(action)
                model.step()
                if self.clock() - started >= budget:
                    break
            self.stepped_at = time.time()
            self._dirty = True
        if not self.replaying:
            self._script = []
            if not self.playing:
                self.registry.release(self)
            self.message = ""
            self._changed("state", "actions", "levers")

    def _replay_turn(self) -> None:
        """One slice of a link's replay, if its page is there and the server's cap allows."""
        if self._gone_since is not None:  # no work for a page that has gone (it may come back)
            self.registry.release(self)
            with self._wake:
                self._wake.wait(0.5)
            return
        if not self.registry.claim(self):
            wanted = (
                f"Waiting to replay the link: the server is already running "
                f"{self.registry.max_playing} runs (its limit)."
            )
            if self.message != wanted:
                self.message = wanted
                self._changed("state")
            with self._wake:
                self._wake.wait(1.0)
            return
        wanted = f"Replaying the link to week {self.target:,}…"
        if self.message != wanted:
            self.message = wanted
            self._changed("state")
        self._guarded(self._replay_slice, REPLAY_SLICE)

    def _refresh_levers(self, now: float) -> None:
        """Tell the controls when levers move on their own (the scenario, the adaptive rule)."""
        self._levers_checked = now
        self._levers_moved()

    def _poke(self) -> None:
        with self._wake:
            self._dirty = True
            self._wake.notify()

    def _guarded(self, change: Callable, *args, **kwargs) -> None:
        try:
            change(*args, **kwargs)
        except Exception as exc:  # a failing step must stop the run, not the server
            logger.exception("the run stopped")
            self.error = f"The run stopped at week {self.model.week}: {exc}"
            self.stop_replay()
            self.pause()
            self._changed()

    def _advance(self, force: bool = False) -> None:
        """One week under the lock: commit due actions, step, then the pause rules."""
        now = self.clock()
        if self.model.week >= MAX_WEEKS:  # outside the lock: pausing re-renders the controls
            self.pause(f"Paused at week {self.model.week}: runs stop after {MAX_WEEKS:,} weeks.")
            return
        with self.lock:
            model = self.model
            committed = self._commit(now, force)
            before = model.stats
            model.step()
            if self.ensemble is not None:
                self.ensemble.step([a for a in self.actions if a.week == model.week])
            self.stepped_at = time.time()  # wall clock: the browser can compare it with its own
            if self.compare is not None:
                for action in self.compare.actions:
                    if action.week == self.compare.model.week + 1:
                        apply(self.compare.model, action)
                self.compare.model.step()
            reason = self.rules.check(model, before)
        if reason:
            self.pause(reason)
        if committed:
            self._changed("actions", "levers")

    def _commit(self, now: float, force: bool) -> bool:
        """Turn settled slider values and pending events into dated actions (under the lock)."""
        model, week = self.model, self.model.week + 1
        due: list[Action] = []
        for lever, (value, at) in list(self._pending.items()):
            if force or not self.playing or now - at >= SETTLE:
                del self._pending[lever]
                if abs(value - model.policy.levers_at(week)[lever]) > 1e-12 or (
                    self.adaptive and lever in _adaptive_levers()
                ):
                    due.append(Action(week, lever, value))
        for name, value in list(self._events.items()):
            del self._events[name]
            due.append(Action(week, name, value))
        for action in due:
            apply(model, action)
            self.actions.append(action)
        return bool(due)

    def marks(self) -> list[dict[str, Any]]:
        """Vertical marks for the charts: every action, and the comparison's fork."""
        marks = [{"week": a.week, "label": a.describe(), "kind": a.name} for a in self.actions]
        if self.compare is not None:
            marks.append({"week": self.compare.fork_week, "label": f"comparison: {self.compare.label}",
                          "kind": "fork"})  # fmt: skip
        return marks

    def frame(self, full: bool = False) -> dict[str, Any]:
        """The next frame for the browser: a change since the last one, or everything."""
        with self.lock:
            if full:
                self.source.reset()
                if self.compare is not None:
                    self.compare.sent_rows = 0
                if self.ensemble is not None:
                    self.ensemble.sent_rows = 0
            marks = self.marks()
            key = len(marks) if not full else -1
            extra: dict[str, Any] = {}
            if self.compare is not None:
                c = self.compare
                extra["compare"] = {
                    "label": c.label,
                    "fork": c.fork_week,
                    "rows": history_rows(c.model, self.source.panels, c.sent_rows),
                    "status": status(c.model),
                }
                c.sent_rows = len(cols.history(c.model)["week"])
            else:
                extra["compare"] = None
            extra["fan"] = None
            if self.ensemble is not None:
                e = self.ensemble
                extra["fan"] = {"label": e.label, "rows": e.rows(self.source.panels, e.sent_rows)}
                e.sent_rows = len(cols.history(self.model)["week"])
            frame = self.source.frame(marks if key != self._marks_sent else None, extra)
            self._marks_sent = len(marks)
            frame["playing"] = self.playing
            frame["stepped_at"] = self.stepped_at
            frame["query"] = to_query(self.settings, self.actions, self.model.week)
            return frame

    def _publish(self, now: float) -> None:
        sender, config_sender = self._sender, self._config_sender
        if sender is None:
            return
        with self.lock:  # config and frame of one source, even if Reset swaps it meanwhile
            full, self._full, self._dirty = self._full, False, False
            config = self.source.config() if full else None
            frame = self.frame(full)
        if config is not None and config_sender is not None:
            config_sender(config)
        self._sent_seq, self._sent_at, self._sent_week = frame["seq"], now, frame["week"]
        if full:
            self._acked_seq = frame["seq"] - 1
        sender(frame)
        self.frames_sent += 1

    def _due(self, now: float) -> float:
        """Seconds until a frame may be sent (0: now), given pacing and the browser's acks."""
        if self._sender is None or not (self._dirty or self._full):
            return float("inf")
        if self._full or not (self.playing or self.replaying):
            return 0.0
        wait = self._sent_at + FRAME_INTERVAL - now
        if self._sent_seq - self._acked_seq >= IN_FLIGHT:
            wait = max(wait, self._sent_at + ACK_TIMEOUT - now)
        return max(wait, 0.0)

    def _loop(self) -> None:
        with self.context if self.context is not None else contextlib.nullcontext():
            next_step = self.clock()
            while not self.closed:
                now = self.clock()
                if self.replaying:
                    self._replay_turn()
                    now = self.clock()
                elif self.playing and now >= next_step:
                    self._guarded(self._advance)
                    self._dirty = True
                    now = self.clock()
                    next_step = max(next_step + 1.0 / self.speed, now - MAX_BACKLOG)
                elif not self.playing:
                    next_step = now
                if self.playing and now - self._levers_checked >= LEVER_REFRESH:
                    self._refresh_levers(now)
                if self._due(now) <= 0.0:
                    try:
                        self._publish(now)
                    except Exception:
                        logger.exception("sending a frame failed")
                        self._dirty = False
                with self._wake:
                    now = self.clock()
                    timeout = self._due(now)
                    if self.playing:
                        timeout = min(timeout, max(next_step - now, 0.0))
                    if self.replaying:
                        timeout = 0.0
                    if not self.playing and self._pending and not self._dirty:
                        timeout = min(timeout, 0.5)
                    if timeout > 0 and not self.closed:
                        self._wake.wait(min(timeout, 1.0))
        self.model = None  # type: ignore[assignment]  # freed once closed


def _catch_up(model: DefectionModel, actions: list[Action], week: int) -> None:
    """Step ``model`` to ``week``, applying ``actions`` at their weeks."""
    while model.week < week:
        for action in actions:
            if action.week == model.week + 1:
                apply(model, action)
        model.step()


def _adaptive_levers() -> tuple[str, ...]:
    return cols.adaptive_levers()
