"""The chart primitives `plots.py` draws every benchmark's figure with (matplotlib, files
only): a figure of N panels, bar charts (plain and grouped, values written on the bars),
two bar panels over the same systems, line charts, and a ratio's title."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["Axes", "Figure", "Report", "annotate_bars", "bar_chart", "grouped_bars",
           "line_chart", "new_figure", "plt", "DPI", "ratio_title", "two_bar_panels"]

Report = dict[str, Any]
_WIDTH, _HEIGHT = 8.0, 3.6
DPI = 100  # the PNGs' resolution


def new_figure(num_axes: int = 1, title: str = "") -> tuple[Figure, list[Axes]]:
    fig, axes = plt.subplots(1, num_axes, figsize=(_WIDTH, _HEIGHT), squeeze=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig, list(axes[0])


def annotate_bars(ax: Axes, bars: BarContainer, values: Sequence[float | None], fontsize: int = 8) -> None:
    """Write each bar's value on top of it ("n/a" for a missing one)."""
    for bar, value in zip(bars, values, strict=True):
        text = "n/a" if value is None else f"{value:,.0f}" if abs(value) >= 100 else \
            f"{value:.3g}"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=fontsize)


def bar_chart(ax: Axes, labels: Sequence[str], values: Sequence[float | None], ylabel: str,
              title: str = "") -> None:
    """One bar per label (a missing value is drawn as 0 and marked "n/a")."""
    heights = [v if v is not None else 0.0 for v in values]
    bars = ax.bar(range(len(labels)), heights, color="#3f8ee8")
    annotate_bars(ax, bars, values)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)


def grouped_bars(ax: Axes, groups: Sequence[str], series: dict[str, Sequence[float | None]],
                 ylabel: str, title: str = "", numbers: bool = False) -> None:
    """Bars of each series side by side within each group (`numbers`: values on top)."""
    width = 0.8 / max(len(series), 1)
    for k, (name, values) in enumerate(series.items()):
        xs = [g + (k - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=name)
        if numbers:
            annotate_bars(ax, bars, values, fontsize=7)
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)


def two_bar_panels(results: dict[str, dict], title: str, left: tuple[str, str],
                   right: tuple[str, str], rotation: int) -> Figure:
    """Two bar panels over the same systems: `results[system][key]` for each (key, ylabel)."""
    fig, axes = new_figure(2, title)
    for ax, (key, ylabel) in zip(axes, (left, right), strict=True):
        bar_chart(ax, list(results), [r.get(key) for r in results.values()], ylabel)
        ax.tick_params(axis="x", labelrotation=rotation, labelsize=7)
    return fig


def line_chart(ax: Axes, xs: Sequence[float], series: dict[str, Sequence[float | None]],
               xlabel: str, ylabel: str, title: str = "") -> None:
    """One line per series over `xs` (a missing value leaves a gap)."""
    for name, values in series.items():
        ax.plot(xs, [float("nan") if v is None else v for v in values], marker="o",
                markersize=4, label=name)
    ax.set_xticks(list(xs), [f"{x:g}" for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)


def ratio_title(report: Report, key: str, label: str) -> str:
    """The report's ratio `key` as "label 1.28x (target 1.5x)"; "" where it has none."""
    value, target = report.get(key), report.get("targets", {}).get(key)
    if value is None:
        return ""
    return f"{label} {value:.2f}x" + (f" (target {target:g}x)" if target is not None else "")
