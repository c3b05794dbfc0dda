"""Small file-system helpers used by the tools."""
import json
import logging
import os

from .comm import is_main_process


def mkdir(path):
    """Create ``path`` and its parents; an existing directory is fine."""
    os.makedirs(path, exist_ok=True)


def save_labels(dataset_list, output_dir):
    """Write ``labels.json`` (class id -> name, from the first dataset that has ``categories``)
    into ``output_dir``, so that predictions can be read back without the dataset."""
    if not is_main_process():
        return
    logger = logging.getLogger(__name__)
    ids_to_labels = {}
    for dataset in dataset_list:
        if hasattr(dataset, "categories"):
            ids_to_labels.update(dataset.categories)
        else:
            logger.warning("Dataset [%s] has no categories attribute, labels.json file won't be created",
                           dataset.__class__.__name__)
    if ids_to_labels:
        labels_file = os.path.join(output_dir, "labels.json")
        logger.info("Saving labels mapping into %s", labels_file)
        with open(labels_file, "w") as f:
            json.dump(ids_to_labels, f, indent=2)


def save_config(cfg, path):
    """Dump the final yacs config to ``path`` (main process only)."""
    if is_main_process():
        with open(path, "w") as f:
            f.write(cfg.dump())
