"""A ceiling on what one cell's outputs hold while they arrive.

A cell printing in a loop sends output faster than any timeout ends it; kept whole, it
grows the test process by hundreds of MB a second and ends up in the report. nbclient
hands every output to ``NotebookClient.output``: there we keep the first half of the
limit (the head) and a moving window of the last half (the tail), and put a line in the
output itself saying how much was dropped in between.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from nbclient import NotebookClient
from nbformat import NotebookNode
from nbformat.v4 import new_output
from traitlets import Integer

from ..report import dropped_line
from . import DEFAULT_OUTPUT_LIMIT


class CappedClient(NotebookClient):
    """nbclient's client, keeping at most ``output_limit`` characters of each cell's outputs."""

    output_limit = Integer(DEFAULT_OUTPUT_LIMIT, help="Characters of output a cell keeps.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cap: _CellCap | None = None

    def output(
        self,
        outs: list[NotebookNode],
        msg: dict[str, Any],
        display_id: str | None,
        cell_index: int,
    ) -> NotebookNode | None:
        cap = self._cap
        if cap is None or not cap.follows(outs) or self.clear_before_next_output:
            cap = self._cap = _CellCap(outs, self.output_limit)
        before = len(outs)
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or len(outs) != before + 1:  # a widget's hook took it
            cap.seen = len(outs)
            return out
        outs.pop()
        self._forget_display(display_id, cell_index, before)
        kept = cap.add(out)
        if cap.removed:
            self._shift_display_ids(cell_index, cap.marker_at + 1, cap.removed)
            cap.removed = 0
        if kept and display_id is not None:  # where it really is now
            self._display_id_map[display_id][cell_index].append(len(outs) - 1)
        return out

    def clear_output(self, outs: list[NotebookNode], msg: dict[str, Any], cell_index: int) -> None:
        super().clear_output(outs, msg, cell_index)
        if not outs:
            self._cap = None

    def _shift_display_ids(self, cell_index: int, start: int, count: int) -> None:
        """Outputs ``start`` to ``start + count`` left the cell: renumber those after them."""
        for cell_map in self._display_id_map.values():
            indexes = cell_map.get(cell_index)
            if indexes:
                cell_map[cell_index] = [
                    i - count if i >= start + count else i
                    for i in indexes
                    if not start <= i < start + count
                ]

    def _forget_display(self, display_id: str | None, cell_index: int, index: int) -> None:
        """Unrecord the place nbclient gave an output: the cap may keep it elsewhere, or drop it."""
        if display_id is not None:
            indexes = self._display_id_map.get(display_id, {}).get(cell_index, [])
            if index in indexes:
                indexes.remove(index)


class _CellCap:
    """The head, the dropped count and the tail of one cell's output list."""

    def __init__(self, outs: list[NotebookNode], limit: int) -> None:
        self.outs = outs
        self.head_left = limit // 2
        self.tail_limit = limit - limit // 2
        #: Outputs of the tail (after the marker), oldest first, with their sizes.
        self.tail: deque[tuple[NotebookNode, int]] = deque()
        self.tail_size = 0
        #: Tail outputs already dropped but still in ``outs`` (removed in batches).
        self.stale = self.stale_size = 0
        self.marker: NotebookNode | None = None
        self.marker_at = 0
        self.dropped = 0
        #: How many outputs the last batch removed from ``outs``, for the display ids.
        self.removed = 0
        self.seen = len(outs)

    def follows(self, outs: list[NotebookNode]) -> bool:
        """Whether ``outs`` is still the list this cap counted (not a new or cleared one)."""
        return outs is self.outs and len(outs) == self.seen

    def add(self, out: NotebookNode) -> bool:
        """Put ``out`` in the outputs, or what the limit lets through; whether any was kept."""
        size = _size(out)
        if self.marker is None and size <= self.head_left:
            self.head_left -= size
            self.outs.append(out)
            self.seen = len(self.outs)
            return True
        if self.marker is None and out.output_type == "stream" and self.head_left > 0:
            head = new_output("stream", name=out.name, text=out.text[: self.head_left])
            self.outs.append(head)
            out.text = out.text[self.head_left :]
            size -= self.head_left
            self.head_left = 0
        kept = self._add_to_tail(out, size)
        self._compact()
        self.seen = len(self.outs)
        return kept

    def _add_to_tail(self, out: NotebookNode, size: int) -> bool:
        if self.marker is None:
            name = out.name if out.output_type == "stream" else "stdout"
            self.marker = new_output("stream", name=name, text="")
            self.outs.append(self.marker)
            self.marker_at = len(self.outs) - 1
        if size > self.tail_limit:
            if out.output_type != "stream":
                self.dropped += size
                return False
            self.dropped += size - self.tail_limit
            out.text = out.text[-self.tail_limit :]
            size = self.tail_limit
        self.outs.append(out)
        self.tail.append((out, size))
        self.tail_size += size
        while self.tail_size > self.tail_limit:
            oldest, old = self.tail[0]
            # Trim a stream rather than lose it whole, by at least a quarter of the
            # tail at a time, so that text is copied a bounded number of times.
            cut = max(self.tail_size - self.tail_limit, self.tail_limit // 4)
            if oldest.output_type == "stream" and cut < old:
                oldest.text = oldest.text[cut:]
                self.tail[0] = (oldest, old - cut)
                self.tail_size -= cut
                self.dropped += cut
                continue
            self.tail.popleft()
            self.tail_size -= old
            self.dropped += old
            self.stale += 1
            self.stale_size += old
        return True

    def _compact(self) -> None:
        """Remove the dropped outputs once they are as many (or as large) as the kept ones,
        so each output is moved a bounded number of times."""
        assert self.marker is not None
        if self.stale and (self.stale >= len(self.tail) or self.stale_size >= self.tail_limit):
            start = self.marker_at + 1
            del self.outs[start : start + self.stale]
            self.removed, self.stale, self.stale_size = self.stale, 0, 0
        self.marker.text = dropped_line(self.dropped - self.stale_size)


def _size(out: NotebookNode) -> int:
    if out.output_type == "stream":
        return len(out.text)
    return len(json.dumps(out, default=str))
