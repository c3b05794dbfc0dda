"""A minimal base class for custom detection datasets."""
import torch


class AbstractDataset(torch.utils.data.Dataset):
    """Base for user datasets. Subclasses set ``CLASSES`` (background first) and implement
    ``__getitem__`` returning ``(image, target BoxList, index)``, ``__len__`` and
    ``get_img_info(index) -> {"height": ..., "width": ...}``."""

    CLASSES = ("__background__",)

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.initMaps()

    def initMaps(self):
        """Build the name <-> contiguous id maps from ``CLASSES``."""
        self.name_to_id = {name: i for i, name in enumerate(self.CLASSES)}
        self.id_to_name = {i: name for i, name in enumerate(self.CLASSES)}

    def __getitem__(self, idx):
        raise NotImplementedError("{} must implement __getitem__".format(type(self).__name__))

    def get_img_info(self, index):
        raise NotImplementedError("{} must implement get_img_info".format(type(self).__name__))

    def __len__(self):
        raise NotImplementedError("{} must implement __len__".format(type(self).__name__))
