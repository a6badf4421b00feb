"""Reading untrusted media as exactly the bytes given.

FFmpeg guesses a file's format from its content and name, and some of the formats it
would guess read *other* files: an HLS playlist (``.m3u8``) fetches its segments from
any URL or ``file:`` path, a concat list opens the files it names, the image-sequence
demuxer expands ``%03d`` in a name. A recording uploaded by an editor with only *add
recording* could so copy another session's private recording into a public one.

So every media file the app opens (uploads, recordings, its own results) goes through
here first:

* :func:`detect_container` names the container from the first bytes, out of a short
  whitelist (MP4/MOV, Matroska/WebM, MPEG-TS, FLV, Ogg) — never from the file name;
* :func:`open_media` hands PyAV a Python file object with that demuxer forced, so no
  protocol is involved at all;
* :func:`ffmpeg_input` gives ffmpeg the same forced demuxer, ``-protocol_whitelist file``
  and the path as an explicit ``file:`` URL, so nothing but that one file is read.

Uploads are checked by extension *and* content (:func:`check_upload`); a file whose
extension says one container and whose bytes say another is refused.
"""

import os

from django.utils.translation import gettext as _

from .exceptions import WagtailLiveError


class UnsupportedMedia(WagtailLiveError):
    """The file is not one of the containers the app reads (or its name lies about it)."""


#: container -> (FFmpeg demuxer forced when reading it, file extensions it may carry)
CONTAINERS = {
    "mp4": ("mov", (".mp4", ".m4v", ".m4a", ".mov")),
    "matroska": ("matroska", (".mkv", ".webm", ".mka")),
    "mpegts": ("mpegts", (".ts", ".mpegts", ".mts")),
    "flv": ("flv", (".flv",)),
    "ogg": ("ogg", (".ogg", ".oga", ".opus")),
}

#: Every extension an upload may have, for the form's help text and its check.
UPLOAD_EXTENSIONS = tuple(ext for _demuxer, exts in CONTAINERS.values() for ext in exts)

# ISO BMFF / QuickTime files start with a box: 4-byte size, then one of these types.
MP4_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
TS_PACKET = 188
# Bytes read to decide: enough for three MPEG-TS packets.
SNIFF_BYTES = 3 * TS_PACKET + 1


def detect_container(head):
    """The container (a key of :data:`CONTAINERS`) that ``head``, a file's first bytes, starts, or None.

    MP4/MOV: a first box of a known type (ISO/IEC 14496-12 §4.2); Matroska/WebM: the
    EBML magic ``1A 45 DF A3``; MPEG-TS: the sync byte ``0x47`` at every 188-byte
    packet start the head holds (at least two); FLV: ``FLV`` and version 1; Ogg
    (audio-only shows): ``OggS`` and stream structure version 0 (RFC 3533 §6).
    """
    head = bytes(head[:SNIFF_BYTES])
    if len(head) >= 8 and head[4:8] in MP4_FIRST_BOXES:
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"OggS\x00"):
        return "ogg"
    starts = range(0, len(head), TS_PACKET)
    if len(starts) >= 2 and all(head[i] == 0x47 for i in starts):
        return "mpegts"
    return None


def sniff_file(path):
    """The container of the file at ``path``; UnsupportedMedia for an empty or other file."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        raise UnsupportedMedia(_("The file is empty (0 bytes)."))
    container = detect_container(head)
    if container is None:
        raise UnsupportedMedia(
            _(
                "The file is not a media file in a supported container (MP4/MOV, "
                "Matroska/WebM, MPEG-TS, FLV or Ogg); playlists, lists of files, images and pages "
                "are refused."
            )
        )
    return container


def demuxer(container):
    """The FFmpeg demuxer forced for ``container``."""
    return CONTAINERS[container][0]


def open_media(path, container=None):
    """Open the file at ``path`` with PyAV, as exactly its own bytes; returns the container.

    The demuxer is forced (``container``, or the one :func:`sniff_file` detects) and PyAV
    reads a Python file object, so no FFmpeg protocol ever opens anything else. Close the
    returned container (it closes the file with it).
    """
    import av

    container = container or sniff_file(path)
    handle = open(path, "rb")  # noqa: SIM115 - handed to PyAV, closed with it below
    try:
        opened = av.open(handle, format=demuxer(container))
    except BaseException:
        handle.close()
        raise
    return _ClosingContainer(opened, handle)


class _ClosingContainer:
    """A PyAV input container that also closes the file object it reads."""

    def __init__(self, container, handle):
        self._container = container
        self._handle = handle

    def __getattr__(self, name):
        return getattr(self._container, name)

    def close(self):
        try:
            self._container.close()
        finally:
            self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ffmpeg_input(path, container=None):
    """ffmpeg's arguments that read the file at ``path`` and nothing else (``-i`` included).

    ``-f`` forces the demuxer (no playlist, concat or image-sequence guessing),
    ``-protocol_whitelist file`` refuses every other protocol, and the ``file:`` prefix
    keeps a name with a colon from being taken for a protocol.
    """
    container = container or sniff_file(path)
    return [
        "-protocol_whitelist",
        "file",
        "-f",
        demuxer(container),
        "-i",
        "file:" + os.path.abspath(path),
    ]


def container_for_extension(name):
    """The container a file name's extension promises, or None."""
    extension = os.path.splitext(name or "")[1].lower()
    for container, (_demuxer, extensions) in CONTAINERS.items():
        if extension in extensions:
            return container
    return None


def check_upload(name, head):
    """Refuse an uploaded file unless its extension and its first bytes name the same container.

    ``name`` is the uploaded file's name, ``head`` its first bytes; returns the
    container. UnsupportedMedia with a message for the uploader otherwise.
    """
    by_name = container_for_extension(name)
    if by_name is None:
        raise UnsupportedMedia(
            _("Upload a video file (%(extensions)s).")
            % {"extensions": ", ".join(UPLOAD_EXTENSIONS)}
        )
    if not head:
        raise UnsupportedMedia(_("The file is empty (0 bytes)."))
    by_content = detect_container(head)
    if by_content != by_name:
        raise UnsupportedMedia(
            _("The file's content is not the %(format)s its name says.")
            % {"format": os.path.splitext(name)[1].lower()}
        )
    return by_content
