"""Charts drawn on the server as SVG geometry: no script, no inline style, nothing to fetch."""

from dataclasses import dataclass

SEVERITY_COLOURS = {
    "critical": "#b3261e",
    "elevated": "#e08a1e",
    "low": "#5a8fd1",
    "normal": "#9aa3ae",
}


@dataclass
class Bar:
    label: str
    value: int
    width: float
    y: float


def horizontal_bars(items: list[tuple[str, int]], width: int = 300, row: int = 22) -> dict:
    """Rows of bars scaled to the largest value, with the SVG's height."""
    top = max((value for _, value in items), default=0) or 1
    bars = [
        Bar(label=label, value=value, width=round(width * value / top, 1), y=index * row)
        for index, (label, value) in enumerate(items)
    ]
    return {"bars": bars, "height": max(len(items), 1) * row, "width": width, "row": row - 6}


@dataclass
class Segment:
    x: float
    y: float
    height: float
    colour: str
    title: str


def stacked_columns(
    days: list[str], series: dict[str, list[int]], height: int = 160, column: int = 18
) -> dict:
    """One column per day, stacked by severity; `series` maps severity to counts per day."""
    totals = [sum(counts[index] for counts in series.values()) for index in range(len(days))]
    top = max(totals, default=0) or 1
    segments = []
    for index, day in enumerate(days):
        base = height
        for severity, counts in series.items():
            count = counts[index]
            if not count:
                continue
            size = height * count / top
            base -= size
            segments.append(
                Segment(
                    x=index * (column + 4),
                    y=round(base, 1),
                    height=round(size, 1),
                    colour=SEVERITY_COLOURS.get(severity, "#777"),
                    title=f"{day}: {count} {severity}",
                )
            )
    return {
        "segments": segments,
        "height": height,
        "width": max(len(days), 1) * (column + 4),
        "column": column,
        "top": top,
        "first": days[0] if days else "",
        "last": days[-1] if days else "",
        "legend": [(name, SEVERITY_COLOURS.get(name, "#777")) for name in series],
    }
