"""What the dashboard's once-a-second updates cost: a repaint of the widget that changed, a layout
pass only when a height may change, and charts drawn once per change of their data."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widget import Widget

from speculators_tui.app import SpeculatorsApp
from speculators_tui.widgets.line_chart import LineChart
from speculators_tui.widgets.quiet_static import QuietStatic
from tui_fakes import four_gpus, write_run_dir


class _Harness(App):
    CSS = "QuietStatic { width: 20; height: auto; } LineChart { width: 40; height: 10; }"

    def compose(self) -> ComposeResult:
        yield QuietStatic("", id="q")
        yield LineChart("loss", id="chart")


def _record_refreshes(monkeypatch) -> list[tuple[str, bool]]:
    seen: list[tuple[str, bool]] = []
    real = Widget.refresh

    def refresh(self, *regions, repaint=True, layout=False, recompose=False):
        seen.append((self.id or type(self).__name__, layout))
        return real(self, *regions, repaint=repaint, layout=layout, recompose=recompose)

    monkeypatch.setattr(Widget, "refresh", refresh)
    return seen


async def test_quiet_static_repaints_without_layout_while_its_height_holds(monkeypatch):
    app = _Harness()
    async with app.run_test(size=(60, 20)) as pilot:
        q = app.query_one("#q", QuietStatic)
        q.set_content(Text("elapsed 0:01"))
        await pilot.pause()
        seen = _record_refreshes(monkeypatch)
        q.set_content(Text("elapsed 0:01"))  # the same: nothing at all
        assert [s for s in seen if s[0] == "q"] == []
        q.set_content(Text("elapsed 0:02"))  # the clock ticks, one row still: a repaint only
        assert [s for s in seen if s[0] == "q"] == [("q", False)]
        await pilot.pause()
        assert "0:02" in str(q.render())
        seen.clear()
        q.set_content(Text("elapsed 0:03 and a long warning that wraps"))  # more rows: a layout pass
        assert [s for s in seen if s[0] == "q"] == [("q", True)]
        await pilot.pause()
        assert q.size.height > 1
        seen.clear()
        q.set_content(Text("elapsed 0:03", style="bold"))  # same words, new style: shown
        assert ("q", False) not in seen and any(s[0] == "q" for s in seen)
        q.update("plain update")  # an update from outside is always shown and forgets the key
        seen.clear()
        q.set_content(Text("elapsed 0:03", style="bold"))
        assert any(s[0] == "q" for s in seen)


async def test_line_chart_draws_once_per_change_of_its_data(monkeypatch):
    app = _Harness()
    async with app.run_test(size=(60, 20)) as pilot:
        chart = app.query_one("#chart", LineChart)
        drawn = []
        real = LineChart.render_lines_text
        monkeypatch.setattr(LineChart, "render_lines_text", lambda self, w, h: drawn.append(1) or real(self, w, h))
        chart.set_series([("train", [(1, 3.0), (2, 2.0), (3, 1.5)], "cyan")])
        await pilot.pause()
        assert len(drawn) == 1
        lines = [chart.render_line(y).text for y in range(chart.size.height)]
        assert len(drawn) == 1  # every row comes from the one drawing
        assert "".join(lines) and "3 step" in lines[-1]
        # The strips show what render_lines_text draws, cell for cell.
        expected = real(chart, *chart.size)
        assert [line.rstrip() for line in lines] == [t.plain.rstrip() for t in expected]
        axis = chart.render_line(chart.size.height - 1)  # the x axis is drawn dim, as a whole line
        assert all(seg.style.dim for seg in axis if seg.text.strip())
        curve = [seg for y in range(chart.size.height - 1) for seg in chart.render_line(y)
                 if "⠀" <= seg.text[:1] <= "⣿"]
        assert curve and all(seg.style.color.name == "cyan" for seg in curve)
        chart.refresh()  # a repaint with nothing changed reuses the strips
        await pilot.pause()
        assert len(drawn) == 1
        chart.set_series([("train", [(1, 3.0), (2, 2.0), (3, 1.5), (4, 1.2)], "cyan")])
        await pilot.pause()
        assert len(drawn) == 2 and "4 step" in chart.render_line(chart.size.height - 1).text


def _live_app(tmp_path, monkeypatch, chart_s: float):
    """The app on a live fabricated run, polling every 0.1 s."""
    import speculators_tui.screens.dashboard as dash

    monkeypatch.setattr(dash, "POLL_S", 0.1)
    monkeypatch.setattr(dash, "CHART_S", chart_s)
    run = write_run_dir(tmp_path / "live", steps=5, finished=False)
    return SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[]), run


def _add_step(run, step: int) -> None:
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"type": "train", "time": %d, "step": %d, "epoch": 0, "loss": 1.0}\n'
                % (1_780_000_040 + 2 * step, step))


async def test_watching_a_live_run_asks_for_no_layout_pass_on_the_metrics_tab(user_config, tmp_path, monkeypatch):
    """Polls that only tick clocks and add points repaint; none re-arranges the screen."""
    app, run = _live_app(tmp_path, monkeypatch, chart_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.5)
        seen = _record_refreshes(monkeypatch)
        for step in range(6, 9):  # the run goes on: new steps arrive between polls
            _add_step(run, step)
            await pilot.pause(0.25)
        painted = {name for name, _ in seen}
        assert {"chart-loss", "stats"} <= painted, painted  # the new points and the clock were shown
        assert [s for s in seen if s[1]] == [], [s for s in seen if s[1]]


async def test_charts_redraw_at_most_every_chart_s_and_catch_up_when_steps_stop(user_config, tmp_path, monkeypatch):
    app, run = _live_app(tmp_path, monkeypatch, chart_s=0.6)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)
        chart = app.screen.query_one("#chart-loss", LineChart)
        draws = []
        real = chart.set_series
        monkeypatch.setattr(chart, "set_series", lambda series: draws.append(1) or real(series))
        for step in range(6, 18):  # a step every 0.1 s for 1.2 s: a poll each time sees new data
            _add_step(run, step)
            await pilot.pause(0.1)
        assert 1 <= len(draws) <= 3, len(draws)  # not one per poll
        await pilot.pause(0.9)  # no more steps: the points the last draw missed still arrive
        axis = chart.render_line(chart.size.height - 1).text  # what is on screen, not the shared list
        assert "17 step" in axis, axis
        app.screen.action_tab("gpus")
        await pilot.pause()
        n = len(draws)
        app.screen.action_tab("metrics")  # back on the tab: drawn at once, whatever the clock
        await pilot.pause()
        assert len(draws) == n + 1


class _LogHarness(App):
    CSS = "LogView { height: 10; }"

    def compose(self) -> ComposeResult:
        from speculators_tui.widgets.log_view import LogView

        yield LogView(id="log", max_lines=500, auto_scroll=True)


async def test_log_view_writes_without_a_layout_pass_and_follows_only_a_reader_at_the_end(monkeypatch):
    app = _LogHarness()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one("#log")
        log.write("".join(f"line {i}\n" for i in range(30)))
        await pilot.pause()
        assert log.line_count == 30 and log.is_vertical_scroll_end
        assert log.virtual_size.height == 30
        seen = _record_refreshes(monkeypatch)
        log.write("".join(f"line {i}\n" for i in range(30, 50)))
        await pilot.pause()
        assert [s for s in seen if s[1]] == []  # a repaint of the log, no layout pass of the screen
        assert log.virtual_size.height == 50 and log.max_scroll_y == 50 - log.scrollable_content_region.height
        assert log.is_vertical_scroll_end and log.vertical_scrollbar.window_virtual_size == 50
        rows = [log.render_line(y).text.strip() for y in range(log.scrollable_content_region.height)]
        assert rows[-1] == "line 49"  # the newest line is on screen
        # A reader who scrolls up to read stays where they are while lines keep coming...
        log.scroll_to(y=5, animate=False, immediate=True)
        await pilot.pause()
        log.write("".join(f"line {i}\n" for i in range(50, 60)))
        await pilot.pause()
        assert log.scroll_y == 5 and log.render_line(0).text.strip() == "line 5"
        # ...and back at the end, the pane follows again.
        log.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        log.write("line 60\n")
        await pilot.pause()
        assert log.is_vertical_scroll_end
        assert log.render_line(log.scrollable_content_region.height - 1).text.strip() == "line 60"
        # Past max_lines the oldest lines go, and what is shown is still the end.
        log.write("".join(f"line {i}\n" for i in range(61, 700)))
        await pilot.pause()
        assert log.line_count == 499 and log.render_line(log.scrollable_content_region.height - 1).text.strip() \
            == "line 699"
