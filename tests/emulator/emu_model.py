"""The document-library model behind the Graph emulator.

A drive is a tree of items keyed by id. Ids, eTags and cTags are derived
deterministically from the dataset path, so re-importing the same tree gives
the same ids (spfs keeps inode numbers stable across remounts by id).
Every mutation bumps the item's version and appends to the drive's change
log, which is what /delta serves. Content lives in a ContentStore, one file
per (item, content version): imported files are symlinks into the dataset
(never written), every content change writes a new file (copy-on-write), so
a download URL that names version N keeps serving N's bytes, whichever
content host (Python or nginx) serves it.
"""

import base64
import hashlib
import os
import shutil
import threading
import time
import uuid

from qxh import file_quickxorhash


def item_id_for(drive_seed: str, relpath: str) -> str:
    """SharePoint-looking id: '01' + 32 base32 characters."""
    digest = hashlib.sha256(f"{drive_seed}:{relpath}".encode()).digest()
    return "01" + base64.b32encode(digest).decode()[:32]


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class ContentStore:
    """content/{item-id}.{version}: the bytes of each content version.

    Flat names so nginx can map /download/{id}/{version} onto a file with one
    alias; symlinks for imported files keep a 1 GiB dataset from being copied."""

    def __init__(self, directory):
        # Fresh per run: files of an earlier run must not be served again.
        self.dir = directory
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, mode=0o700)

    def path(self, item_id, version):
        return os.path.join(self.dir, f"{item_id}.{int(version)}")

    def link(self, item_id, version, target):
        path = self.path(item_id, version)
        tmp = path + ".tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.path.abspath(target), tmp)
        os.replace(tmp, path)
        return path

    def write(self, item_id, version, data):
        """Writes atomically; replacing a symlink never touches its target."""
        path = self.path(item_id, version)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return path

    def drop(self, item_id, versions):
        for v in versions:
            try:
                os.unlink(self.path(item_id, v))
            except FileNotFoundError:
                pass


class Item:
    def __init__(self, item_id, name, parent_id, is_folder, mtime, ctime):
        self.id = item_id
        self.name = name
        self.parent_id = parent_id
        self.is_folder = is_folder
        self.guid = str(uuid.uuid5(uuid.NAMESPACE_OID, item_id)).upper()
        self.version = 1          # eTag counter: metadata or content changes
        self.content_version = 1  # cTag counter: content changes
        self.created = ctime
        self.modified = mtime
        self.content_path = None  # files: the current version in the ContentStore
        self.size = 0             # listed size (may differ from served bytes)
        self._qxh = None
        self.rewritten = False    # served bytes differ from the listing
        self.deleted = False
        self.children = set()

    @property
    def etag(self):
        return f'"{{{self.guid}}},{self.version}"'

    @property
    def ctag(self):
        return f'"c:{{{self.guid}}},{self.content_version}"'

    def quickxorhash(self, cache=None):
        if self._qxh is None and self.content_path:
            self._qxh = cache.get(self.content_path) if cache else file_quickxorhash(self.content_path)
        return self._qxh


class HashCache:
    """quickXorHash per file keyed by (path, size, mtime), kept on disk so a
    gigabyte file is hashed once, not at every emulator start."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.entries = {}
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    key, _, value = line.rstrip("\n").rpartition("\t")
                    self.entries[key] = value
        except OSError:
            pass

    def get(self, file_path):
        # Keyed by the real file (a store symlink resolves into the dataset),
        # so --hash-cache is reusable by later emulators on the same dataset.
        real = os.path.realpath(file_path)
        st = os.stat(real)
        key = f"{real}|{st.st_size}|{st.st_mtime_ns}"
        with self.lock:
            if key in self.entries:
                return self.entries[key]
        value = file_quickxorhash(file_path)
        with self.lock:
            self.entries[key] = value
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(f"{key}\t{value}\n")
            except OSError:
                pass
        return value


class Drive:
    def __init__(self, drive_id, name, web_url, site_id, store, hash_cache,
                 seed, hidden=False):
        self.id = drive_id
        self.name = name
        self.web_url = web_url
        self.site_id = site_id
        self.hidden = hidden
        self.store = store
        self.hashes = hash_cache
        self.seed = seed
        self.lock = threading.RLock()
        self.items = {}
        self.seq = 0                 # change-log sequence
        self.changes = []            # list of (seq, item_id), ascending
        self.delta_epoch = 0         # bumped to invalidate delta tokens
        self.created = time.time()
        self.quota_total = 1 << 40
        root = Item(item_id_for(seed, ""), "root", None, True, self.created, self.created)
        self.root_id = root.id
        self.items[root.id] = root
        self._record(root.id)

    # ---- bookkeeping ----
    def _record(self, item_id):
        self.seq += 1
        self.changes.append((self.seq, item_id))

    def path_of(self, item):
        parts = []
        while item.parent_id is not None:
            parts.append(item.name)
            item = self.items[item.parent_id]
        return "/".join(reversed(parts))

    def child_by_name(self, parent, name):
        low = name.casefold()
        for cid in parent.children:
            c = self.items[cid]
            if c.name.casefold() == low:
                return c
        return None

    def resolve_path(self, start, relpath):
        """Case-insensitive walk from item start along 'a/b/c'."""
        item = start
        for part in [p for p in relpath.split("/") if p]:
            if not item.is_folder:
                return None
            item = self.child_by_name(item, part)
            if item is None:
                return None
        return item

    def folder_size(self, item):
        if not item.is_folder:
            return item.size
        return sum(self.folder_size(self.items[c]) for c in item.children)

    def ancestors(self, item):
        out = []
        while item.parent_id is not None:
            item = self.items[item.parent_id]
            out.append(item)
        return out

    # ---- import ----
    def import_tree(self, root_dir):
        with self.lock:
            self._import_dir(root_dir, self.items[self.root_id], "")
            st = os.stat(root_dir)
            self.items[self.root_id].modified = st.st_mtime

    def _import_dir(self, dir_path, parent, rel):
        for entry in sorted(os.scandir(dir_path), key=lambda e: e.name):
            child_rel = f"{rel}/{entry.name}" if rel else entry.name
            st = entry.stat()
            item = Item(item_id_for(self.seed, child_rel), entry.name, parent.id,
                        entry.is_dir(), st.st_mtime, st.st_mtime)
            self.items[item.id] = item
            parent.children.add(item.id)
            self._record(item.id)
            if entry.is_dir():
                self._import_dir(entry.path, item, child_rel)
            else:
                item.content_path = self.store.link(item.id, 1, entry.path)
                item.size = st.st_size

    # ---- mutations (control interface) ----
    def _touch(self, item, content=False):
        item.version += 1
        if content:
            item.content_version += 1
        item.modified = time.time()
        self._record(item.id)

    def create(self, parent, name, data=None, folder=False):
        with self.lock:
            if self.child_by_name(parent, name):
                raise FileExistsError(name)
            rel = f"{self.path_of(parent)}/{name}".lstrip("/")
            item_id = item_id_for(self.seed, f"{rel}#{self.seq}")
            now = time.time()
            item = Item(item_id, name, parent.id, folder, now, now)
            self.items[item.id] = item
            parent.children.add(item.id)
            if not folder:
                item.content_path = self.store.write(item.id, item.content_version, data or b"")
                item.size = len(data or b"")
            self._record(item.id)
            return item

    def modify(self, item, data):
        if item.is_folder:
            raise IsADirectoryError(self.path_of(item))
        with self.lock:
            self._touch(item, content=True)
            item.content_path = self.store.write(item.id, item.content_version, data)
            item.size = len(data)
            item._qxh = None
            item.rewritten = False

    def rename(self, item, new_name):
        with self.lock:
            parent = self.items[item.parent_id]
            other = self.child_by_name(parent, new_name)
            if other and other is not item:
                raise FileExistsError(new_name)
            item.name = new_name
            self._touch(item)

    def move(self, item, new_parent):
        with self.lock:
            if new_parent is item or item in self.ancestors(new_parent):
                raise ValueError("cannot move a folder into itself")
            if self.child_by_name(new_parent, item.name):
                raise FileExistsError(item.name)
            self.items[item.parent_id].children.discard(item.id)
            item.parent_id = new_parent.id
            new_parent.children.add(item.id)
            self._touch(item)

    def delete(self, item):
        """Deletes a subtree; its content files go too, so old download URLs
        answer 404 on either content host."""
        with self.lock:
            for cid in list(item.children):
                self.delete(self.items[cid])
            self.items[item.parent_id].children.discard(item.id)
            item.deleted = True
            if not item.is_folder:
                self.store.drop(item.id, range(1, item.content_version + 1))
            self._record(item.id)

    def set_served_bytes(self, item, data):
        """Serve different bytes than the listing says (SharePoint rewriting
        Office files): size and hash in the metadata stay as they were.
        No eTag/cTag change and no delta entry, as with the real rewrite."""
        with self.lock:
            item.quickxorhash(self.hashes)  # pin the listed hash first
            item.content_path = self.store.write(item.id, item.content_version, data)
            item.rewritten = True

    def read_content(self, item):
        with open(item.content_path, "rb") as f:
            return f.read()

    def version_path(self, item, version):
        """The file holding content version `version` of item, or None."""
        if item.is_folder or item.deleted or not 1 <= version <= item.content_version:
            return None
        path = self.store.path(item.id, version)
        return path if os.path.exists(path) else None
