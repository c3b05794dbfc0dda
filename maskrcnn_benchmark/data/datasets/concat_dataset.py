"""Several datasets read as one, with a way back to the member dataset of an index."""
import bisect

from torch.utils.data.dataset import ConcatDataset as _ConcatDataset


class ConcatDataset(_ConcatDataset):
    """``torch.utils.data.ConcatDataset`` that also answers ``get_img_info``; samples carry their
    global index (not the index inside the member dataset)."""

    def __getitem__(self, idx):
        dataset_idx, sample_idx = self.get_idxs(idx)
        image, target, _ = self.datasets[dataset_idx][sample_idx]
        return image, target, idx if idx >= 0 else idx + len(self)

    def get_idxs(self, idx):
        """(index of the member dataset, index inside it) for a global ``idx``."""
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError("index {} out of range for a ConcatDataset of {} images".format(
                idx, len(self)))
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        sample_idx = idx if dataset_idx == 0 else idx - self.cumulative_sizes[dataset_idx - 1]
        return dataset_idx, sample_idx

    def get_img_info(self, idx):
        dataset_idx, sample_idx = self.get_idxs(idx)
        return self.datasets[dataset_idx].get_img_info(sample_idx)
