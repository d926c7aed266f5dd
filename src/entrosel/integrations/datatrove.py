"""entrosel inside a datatrove pipeline (``pip install 'entrosel[datatrove]'``).

- :class:`EntroselFilter` runs a record-level entrosel filter (``LengthFilter``, a plugin's)
  as a datatrove ``BaseFilter``, one batch of documents at a time;
  :class:`EntroselLengthFilter` builds it from ``LengthFilter``'s options.
- :class:`EntroselShardFilter` runs a filter that needs every record before it decides
  (``Dedup``: a record goes as the copy of an earlier one) over the whole shard of its task;
  :class:`EntroselDedupFilter` builds it from ``Dedup``'s options.
- :class:`EntroselSelect` runs a selector (``ZipSelector``, ``TargetSelector``, ...) as a
  ``PipelineStep`` over the whole shard of its task and passes on the picked documents, in
  selection order.

**Per task and across tasks.** datatrove gives each task (rank) its own shard of the input
files, and a step sees only its task's documents. A shard filter or a selection is therefore
done per task: ``EntroselDedupFilter`` removes copies within a shard (a copy in another shard
stays) and ``EntroselSelect(ZipSelector(budget=1000))`` picks 1,000 documents from each shard,
so ``tasks=N`` gives N x 1,000. For one selection over the whole pool, run the selecting step
with ``tasks=1``: either the whole pipeline, or a second executor that reads the first one's
output (``depends=``). The selection holds its shard's documents in memory while it runs.

A document reaches entrosel as the record ``{**doc.metadata, "id": doc.id, "text": doc.text}``
(datatrove keeps the input's other fields in ``metadata``), so rendering, options and errors
are the command line's, and a pipeline keeps the same documents as ``entrosel filter`` and
``entrosel select`` on the same JSONL file. Documents pass through unchanged.
"""
from __future__ import annotations

from typing import Any, Iterator

try:
    from datatrove.data import Document, DocumentsPipeline
    from datatrove.pipeline.base import PipelineStep
    from datatrove.pipeline.filters.base_filter import BaseFilter
    from datatrove.utils.typeshelper import StatHints
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("entrosel.integrations.datatrove needs datatrove: "
                      "pip install 'entrosel[datatrove]'") from None

from entrosel.filters import Dedup, Filter, LengthFilter
from entrosel.pool import InputOptions
from entrosel.selection import Selector

__all__ = ["EntroselDedupFilter", "EntroselFilter", "EntroselLengthFilter", "EntroselSelect",
           "EntroselShardFilter", "document_record"]


def document_record(doc: Document) -> dict[str, Any]:
    """The record entrosel sees for a datatrove document."""
    return {**doc.metadata, "id": doc.id, "text": doc.text}


def _verdicts(flt: Filter, docs: list[Document], options: InputOptions) -> list[bool | tuple[bool, str]]:
    """Fit ``flt`` on ``docs`` and say, per document, keep (True) or drop with a reason."""
    flt.fit([document_record(d) for d in docs], options)
    out: list[bool | tuple[bool, str]] = []
    for i in range(len(docs)):
        if flt.is_kept(i):
            out.append(True)
        else:
            removal = flt.removed_.get(i)
            out.append((False, removal.reason if removal is not None else "unreadable"))
    return out


class EntroselFilter(BaseFilter):
    """A record-level entrosel filter as a datatrove filter: each batch of ``batch_size``
    documents is judged by ``filter.fit`` (a dropped document's reason, e.g. ``min_chars``,
    goes to datatrove's stats as ``dropped_<reason>`` and to the ``exclusion_writer``).
    ``text_field``/``template``/``on_error``: as on the command line."""

    name = "🗜 entrosel filter"

    def __init__(self, filter: Filter, *, exclusion_writer: Any = None, batch_size: int = 1024,
                 text_field: str | None = None, template: str | None = None,
                 on_error: str = "raise") -> None:
        if isinstance(filter, Dedup):
            raise TypeError("Dedup decides over the whole shard: use EntroselShardFilter "
                            "(or EntroselDedupFilter)")
        super().__init__(exclusion_writer, batch_size)
        self.entrosel_filter = filter.validate()
        self.options = InputOptions(None, "text", text_field, template, on_error)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        return _verdicts(self.entrosel_filter, batch, self.options)


class EntroselLengthFilter(EntroselFilter):
    """``entrosel filter length`` in datatrove: the keyword arguments are
    :class:`entrosel.LengthFilter`'s (``min_chars``, ``max_words``, ``min_response_chars``, ...)."""

    name = "🗜 entrosel length"

    def __init__(self, *, exclusion_writer: Any = None, batch_size: int = 1024,
                 text_field: str | None = None, template: str | None = None,
                 on_error: str = "raise", **options: Any) -> None:
        super().__init__(LengthFilter(**options), exclusion_writer=exclusion_writer,
                         batch_size=batch_size, text_field=text_field, template=template,
                         on_error=on_error)


class EntroselShardFilter(BaseFilter):
    """An entrosel filter that decides over every record (``Dedup``) as a datatrove filter:
    it reads its task's whole shard, fits once, then passes on the kept documents in input
    order (per task: see the module's notes)."""

    name = "🗜 entrosel shard filter"

    def __init__(self, filter: Filter, *, exclusion_writer: Any = None,
                 text_field: str | None = None, template: str | None = None,
                 on_error: str = "raise") -> None:
        super().__init__(exclusion_writer)
        self.entrosel_filter = filter.validate()
        self.options = InputOptions(None, "text", text_field, template, on_error)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:  # one document: nothing to compare
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        return _verdicts(self.entrosel_filter, batch, self.options)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        docs = list(data or ())
        self.batch_size = max(len(docs), 1)  # one batch: the whole shard
        yield from super().run(iter(docs), rank, world_size)


class EntroselDedupFilter(EntroselShardFilter):
    """``entrosel filter dedup`` in datatrove, per shard: the keyword arguments are
    :class:`entrosel.Dedup`'s (``near``, ``threshold``, ``lowercase``, ...)."""

    name = "🗜 entrosel dedup"

    def __init__(self, *, exclusion_writer: Any = None, text_field: str | None = None,
                 template: str | None = None, on_error: str = "raise", **options: Any) -> None:
        super().__init__(Dedup(**options), exclusion_writer=exclusion_writer,
                         text_field=text_field, template=template, on_error=on_error)


class EntroselSelect(PipelineStep):
    """``entrosel select`` in datatrove: ``selector`` (``ZipSelector(budget=1000)``,
    ``TargetSelector(...)``) picks from its task's whole shard; the picked documents go on,
    unchanged, in selection order, and the others are counted as dropped."""

    type = "🎯 - SELECT"
    name = "entrosel select"

    def __init__(self, selector: Selector) -> None:
        super().__init__()
        self.selector = selector.validate()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        docs = list(data or ())
        if not docs:
            return
        with self.track_time():
            picked = self.selector.select([document_record(d) for d in docs])
        for _ in docs:
            self.stat_update(StatHints.total)
        for _ in range(len(docs) - len(picked)):
            self.stat_update(StatHints.dropped)
        for i in picked:
            self.stat_update(StatHints.forwarded)
            self.update_doc_stats(docs[i])
            yield docs[i]
