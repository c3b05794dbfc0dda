"""Download-once cache for pretrained weights given by URL."""
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from tqdm import tqdm

from .comm import is_main_process, synchronize


def default_cache_dir():
    """``$TORCH_HOME/models`` when TORCH_HOME is set, else ``~/.torch/models``."""
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        return os.path.join(os.path.expanduser(torch_home), "models")
    return os.path.join(os.path.expanduser("~"), ".torch", "models")


def _download(url, destination, progress):
    folder = os.path.dirname(destination)
    handle, temp_path = tempfile.mkstemp(dir=folder, prefix=".download-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url) as response:
            total = response.headers.get("Content-Length")
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      disable=not progress, file=sys.stderr, desc=os.path.basename(destination)) as bar:
                while True:
                    chunk = response.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        # a partial download never takes the final name
        os.replace(temp_path, destination)
    except (urllib.error.URLError, OSError) as err:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise RuntimeError(f"cannot download {url} to {destination}: {err}") from err


def cache_url(url, model_dir=None, progress=True):
    """Local path of the file at ``url``, downloading it into ``model_dir`` (default
    :func:`default_cache_dir`) the first time. In distributed runs only the main process downloads;
    the others wait for it."""
    model_dir = model_dir or default_cache_dir()
    os.makedirs(model_dir, exist_ok=True)
    filename = os.path.basename(urllib.parse.urlparse(url).path)
    if not filename:
        raise ValueError(f"cache_url: {url!r} does not end with a file name")
    cached_file = os.path.join(model_dir, filename)
    if is_main_process() and not os.path.exists(cached_file):
        logging.getLogger(__name__).info("Downloading %s to %s", url, cached_file)
        _download(url, cached_file, progress)
    synchronize()
    return cached_file
