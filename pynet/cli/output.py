"""How the commands print: rich tables and progress bars on a terminal,
plain aligned text otherwise, JSON with --json."""
import json
import sys


def _rich():
    """rich, if installed (the `cli` extra) and stdout is a terminal."""
    if not sys.stdout.isatty():
        return None
    try:
        import rich  # noqa: F401
    except ImportError:
        return None
    return rich


def emit_json(obj):
    json.dump(obj, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


def print_table(columns, rows, title=None):
    """rows: lists of cells, one per column (str() is applied)."""
    rows = [[("" if c is None else str(c)) for c in r] for r in rows]
    if _rich() is not None:
        from rich.console import Console
        from rich.table import Table
        table = Table(*columns, title=title)
        for r in rows:
            table.add_row(*r)
        Console().print(table)
        return
    if title:
        print(title)
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    for r in [list(columns)] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


class Progress:
    """A byte-count progress bar: rich on a terminal, silent otherwise."""

    def __init__(self, description, total=None, enabled=True):
        self.description = description
        self.total = total
        self.done = 0
        self._bar = None
        self._task = None
        self.enabled = enabled and _rich() is not None

    def __enter__(self):
        if self.enabled:
            from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress,
                                       TimeRemainingColumn, TransferSpeedColumn)
            self._bar = RichProgress("[progress.description]{task.description}", BarColumn(),
                                     DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def set_total(self, total):
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self, n):
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False


def fmt_rate(nbytes, seconds):
    """'123.4 Mbit/s' from a byte count over seconds."""
    if seconds <= 0:
        return "-"
    bits = nbytes * 8 / seconds
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.1f} {unit}"
    return f"{bits:.0f} bit/s"
