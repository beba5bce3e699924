"""Faults applied to an answer on its way out: the silent successes and the broken connections that
gateways trip on, in Toxiproxy's vocabulary.

Each is a *toxic*, a small unit behind one interface (`Toxic`), and `TOXICS` lists them in the order
they apply, as Toxiproxy chains the toxics of a proxy. A toxic's `name` is the provider setting that
holds its *toxicity*: the chance (0 to 1) that it fires for an answer, 0 being off. Its `attributes`
are its other settings, named `<name>_<attribute>`. Like every setting they start from the profile
(0 for every toxicity), change with `--set NAME.setting=value` or `PATCH /admin/providers/NAME`, and so
with a scenario's `[[actions]]`.

Two kinds, one interface:
- *content* toxics change what the answer says (`edit` on its decoded JSON): `empty_data`,
  `fewer_images`, `image_not_found`. An answer is a 200 all the same.
- *connection* toxics change how its bytes travel (`edit` sets the framing and how the connection
  ends, `pipe` transforms the body's bytes as they are written): `timeout`, `reset_peer`,
  `limit_data`, `slicer`, `bandwidth`, `slow_close`.

Draws are made per answer from a random stream per provider and toxic (from `--seed`), so turning
one toxic on shifts no other draw. An answer a client reads again and again (a Midjourney task it
polls, an image URL) is drawn from a hash of its identity instead, so every read agrees.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from xxhash import xxh3_64_intdigest


@dataclass(frozen=True)
class Attribute:
    """One of a toxic's settings besides its toxicity."""

    name: str          # the setting, `<toxic>_<attribute>`
    default: float
    lo: float
    hi: float
    integer: bool
    meaning: str


@dataclass(frozen=True)
class Ending:
    """How a connection ends once a toxic has had its way with the answer."""

    after_s: float     # wait this long first (returning early if the client leaves)
    reset: bool        # True: TCP RST (SO_LINGER 0); False: an orderly close (FIN)


class Answer:
    """One answer as the toxics see it."""

    def __init__(self, doc: Any, body_length: int, gone_url: Callable[[str], tuple[str, str | None]] | None) -> None:
        self.doc = doc                      # the decoded JSON of a 200, for content toxics; None otherwise
        self.edited = False
        self.body_length = body_length
        self.gone_url = gone_url            # re-signs an image URL as one that 404s
        self.silent = False                 # write nothing at all (timeout)
        self.close_delimited = False        # no Content-Length: the body ends when the connection does
        self.ending: Ending | None = None   # None: the connection stays open for the next request


Draw = Callable[[str | None], bool]   # fires(key): this toxic's draw for one answer, or for a keyed identity


class Toxic:
    """Base: a toxic that changes nothing."""

    name = ""
    connection = False                      # True: acts on the bytes and the connection, not the content
    attributes: tuple[Attribute, ...] = ()
    meaning = ""

    def edit(self, answer: Answer, values: Mapping[str, float], fires: Draw) -> bool:
        """Change the answer before anything is written; True if it fired. A content toxic calls
        `fires` itself (per image or task); a connection toxic is called only once it has fired."""
        return False

    def pipe(self, chunks: AsyncIterator[bytes], answer: Answer, values: Mapping[str, float],
             rng: random.Random) -> AsyncIterator[bytes]:
        """Transform the body's bytes on their way to the socket."""
        return chunks


# --- where an answer keeps its images, in each API's shape ------------------------------------------


def _image_lists(doc: Any) -> list[list[Any]]:
    """The lists an answer's images are items of: OpenAI and relay `data`, Vertex `predictions`,
    Gemini `candidates[].content.parts` (the parts with `inlineData`)."""
    if not isinstance(doc, dict):
        return []
    found = [doc[k] for k in ("data", "predictions") if isinstance(doc.get(k), list)]
    for candidate in doc.get("candidates") or ():
        parts = candidate.get("content", {}).get("parts") if isinstance(candidate, dict) else None
        if isinstance(parts, list):
            found.append(parts)
    return found


def _is_image(item: Any) -> bool:
    return not isinstance(item, dict) or "inlineData" in item or "text" not in item


def _tasks(doc: Any) -> list[dict[str, Any]]:
    """Midjourney tasks with an image: a fetch answer, or each task of a list."""
    items = doc if isinstance(doc, list) else [doc]
    return [t for t in items if isinstance(t, dict) and t.get("status") == "SUCCESS" and t.get("imageUrl")]


def _drop_images(doc: Any, keep: Callable[[int], int], fires: Draw) -> bool:
    """Keep `keep(n)` of each image list's n images (drawn once per answer); for Midjourney tasks
    (drawn per task id) `keep` of 0 takes the image URL away."""
    changed = False
    lists = [lst for lst in _image_lists(doc) if any(_is_image(i) for i in lst)]
    if lists and fires(None):
        for lst in lists:
            images = [i for i, item in enumerate(lst) if _is_image(item)]
            for index in reversed(images[keep(len(images)):]):
                del lst[index]
                changed = True
    for task in _tasks(doc):
        if keep(1) == 0 and fires(str(task.get("id"))):
            task["imageUrl"] = None
            if isinstance(task.get("imageUrls"), list):
                task["imageUrls"] = []
            changed = True
    return changed


class EmptyData(Toxic):
    name = "empty_data"
    meaning = "a 200 with no image: `data: []` (OpenAI, relay), `predictions: []` (Vertex), no `imageUrl` on a " \
              "SUCCESS task (Midjourney)"

    def edit(self, answer: Answer, values: Mapping[str, float], fires: Draw) -> bool:
        return _drop_images(answer.doc, lambda n: 0, fires)


class FewerImages(Toxic):
    name = "fewer_images"
    meaning = "a 200 with one image fewer than asked (none when one was asked)"

    def edit(self, answer: Answer, values: Mapping[str, float], fires: Draw) -> bool:
        if _tasks(answer.doc):
            return False   # a Midjourney task has one image (its grid): nothing to leave out short of all
        return _drop_images(answer.doc, lambda n: n - 1, fires)


def _urls(doc: Any) -> list[tuple[dict[str, Any], str]]:
    """(holder, key) of each image URL in an answer: OpenAI and relay `data[].url`, Midjourney `imageUrl`."""
    out = [(item, "url") for lst in _image_lists(doc) for item in lst
           if isinstance(item, dict) and isinstance(item.get("url"), str)]
    return out + [(task, "imageUrl") for task in _tasks(doc) if isinstance(task["imageUrl"], str)]


class ImageNotFound(Toxic):
    name = "image_not_found"
    meaning = "a 200 whose image URL answers 404 BlobNotFound when fetched (drawn per image, so every poll " \
              "of a task agrees)"

    def edit(self, answer: Answer, values: Mapping[str, float], fires: Draw) -> bool:
        if answer.gone_url is None:
            return False
        changed = False
        for holder, key in _urls(answer.doc):
            broken, digest = answer.gone_url(holder[key])
            if digest is not None and fires(digest):
                holder[key] = broken
                changed = True
        return changed


class Timeout(Toxic):
    name = "timeout"
    connection = True
    attributes = (Attribute("timeout_ms", 60_000, 0, 600_000, False,
                            "how long the connection is held, answering nothing, before it is closed; "
                            "0 closes it at once (an empty reply)"),)
    meaning = "accept the request and answer nothing: no status line, no byte, until the client gives up or " \
              "`timeout_ms` passes, then close"

    def edit(self, answer: Answer, values: Mapping[str, float], fires: Draw) -> bool:
        answer.silent = True
        answer.ending = Ending(values["timeout_ms"] / 1000.0, reset=False)
        return True


async def _cut(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in chunks:
        if sent >= limit:
            break
        piece = chunk[:limit - sent]
        sent += len(piece)
        yield piece


class ResetPeer(Toxic):
    name = "reset_peer"
    connection = True
    attributes = (Attribute("reset_peer_timeout_ms", 0, 0, 600_000, False,
                            "wait this long after the first half of the body before the reset"),)
    meaning = "send the status, the headers and the first half of the body, then reset the connection (TCP RST)"

    def edit(self, answer: Answer, values: Mapping[str, float], fires: Draw) -> bool:
        if answer.ending is None:
            answer.ending = Ending(values["reset_peer_timeout_ms"] / 1000.0, reset=True)
        return True

    def pipe(self, chunks: AsyncIterator[bytes], answer: Answer, values: Mapping[str, float],
             rng: random.Random) -> AsyncIterator[bytes]:
        return _cut(chunks, answer.body_length // 2)


class LimitData(Toxic):
    name = "limit_data"
    connection = True
    attributes = (Attribute("limit_data_bytes", 100, 0, 1e10, True,
                            "bytes of the body written before the connection is closed (Toxiproxy counts "
                            "the headers too; here the status line and headers always go out whole)"),)
    meaning = "send the headers (with the full Content-Length) and only `limit_data_bytes` of the body, then " \
              "close the connection: a truncated body"

    def edit(self, answer: Answer, values: Mapping[str, float], fires: Draw) -> bool:
        if answer.ending is None:
            answer.ending = Ending(0.0, reset=False)
        return True

    def pipe(self, chunks: AsyncIterator[bytes], answer: Answer, values: Mapping[str, float],
             rng: random.Random) -> AsyncIterator[bytes]:
        return _cut(chunks, int(values["limit_data_bytes"]))


class Slicer(Toxic):
    name = "slicer"
    connection = True
    attributes = (Attribute("slicer_average_size", 1024, 1, 1e7, True, "average bytes in a slice"),
                  Attribute("slicer_size_variation", 512, 0, 1e7, True,
                            "a slice is average_size plus or minus up to this many bytes"),
                  Attribute("slicer_delay_us", 1000, 0, 1e7, False, "microseconds between slices"))
    meaning = "write the body in small slices with a delay between them"

    async def pipe(self, chunks: AsyncIterator[bytes], answer: Answer, values: Mapping[str, float],
                   rng: random.Random) -> AsyncIterator[bytes]:
        average, variation = values["slicer_average_size"], values["slicer_size_variation"]
        delay = values["slicer_delay_us"] / 1e6
        async for chunk in chunks:
            view, pos = memoryview(chunk), 0
            while pos < len(view):
                size = max(1, int(average + rng.uniform(-variation, variation)))
                yield bytes(view[pos:pos + size])
                pos += size
                if delay:
                    await asyncio.sleep(delay)


class Bandwidth(Toxic):
    name = "bandwidth"
    connection = True
    attributes = (Attribute("bandwidth_kb_per_s", 1024, 1, 1e7, False, "KB (1024 bytes) per second"),)
    meaning = "write the body at most `bandwidth_kb_per_s` per connection"

    async def pipe(self, chunks: AsyncIterator[bytes], answer: Answer, values: Mapping[str, float],
                   rng: random.Random) -> AsyncIterator[bytes]:
        rate = values["bandwidth_kb_per_s"] * 1024
        step = max(1, int(rate / 20))   # 50 ms worth a write, as Toxiproxy paces in short steps
        loop = asyncio.get_running_loop()
        due = loop.time()
        async for chunk in chunks:
            view = memoryview(chunk)
            for pos in range(0, len(view), step):
                piece = bytes(view[pos:pos + step])
                yield piece
                due += len(piece) / rate
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)


class SlowClose(Toxic):
    name = "slow_close"
    connection = True
    attributes = (Attribute("slow_close_delay_ms", 1000, 0, 600_000, False,
                            "how long the connection stays open after the last byte"),)
    meaning = "answer without Content-Length (`Connection: close`: the body ends when the connection does) " \
              "and close the connection only `slow_close_delay_ms` after the last byte"

    def edit(self, answer: Answer, values: Mapping[str, float], fires: Draw) -> bool:
        answer.close_delimited = True
        if answer.ending is None:
            answer.ending = Ending(values["slow_close_delay_ms"] / 1000.0, reset=False)
        return True


# The order they apply in: content first, then what decides whether anything is written (timeout),
# how the body is cut (reset_peer, limit_data), then how what remains is paced (slicer, bandwidth),
# and how the connection ends (slow_close). When two would end a connection, the earlier decides.
TOXICS: tuple[Toxic, ...] = (EmptyData(), FewerImages(), ImageNotFound(), Timeout(), ResetPeer(), LimitData(),
                             Slicer(), Bandwidth(), SlowClose())
BY_NAME = {t.name: t for t in TOXICS}


def toxic_settings() -> dict[str, Attribute]:
    """Every setting the toxics add, toxicities and attributes, in TOXICS order."""
    out: dict[str, Attribute] = {}
    for toxic in TOXICS:
        out[toxic.name] = Attribute(toxic.name, 0.0, 0.0, 1.0, False, f"toxicity: {toxic.meaning}")
        for attribute in toxic.attributes:
            out[attribute.name] = attribute
    return out


def default_values() -> dict[str, float]:
    return {name: float(attribute.default) for name, attribute in toxic_settings().items()}


class ProviderToxics:
    """One provider's toxics: its values (the live settings), its draws and how often each fired."""

    def __init__(self, provider: str, seed: int, values: Callable[[], Mapping[str, float]]) -> None:
        self.provider = provider
        self.seed = seed
        self._values = values
        self.rngs = {t.name: random.Random(int.from_bytes(
            hashlib.sha256(f"{seed}:{provider}:toxic:{t.name}".encode()).digest()[:8], "big")) for t in TOXICS}
        self.fired: dict[str, int] = dict.fromkeys(BY_NAME, 0)

    @property
    def values(self) -> Mapping[str, float]:
        return self._values()

    def active(self) -> list[Toxic]:
        values = self.values
        return [t for t in TOXICS if values[t.name] > 0]

    def draw(self, toxic: Toxic) -> Draw:
        chance = self.values[toxic.name]
        rng = self.rngs[toxic.name]

        def fires(key: str | None) -> bool:
            if key is None:
                return rng.random() < chance
            u = xxh3_64_intdigest(f"{self.seed}:{self.provider}:{toxic.name}:{key}".encode()) / 2**64
            return u < chance

        return fires
