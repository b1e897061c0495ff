"""What every layer shares: ``params``/``grads`` dicts, state_dict handling, the generator
``rng`` and the training/evaluation mode."""
import numpy as np


class _Layer:
    """What every layer shares: ``params``/``grads`` dicts, state_dict handling, the generator
    ``rng`` and the training/evaluation mode (``training``, :meth:`train`, :meth:`eval`)."""

    params: dict
    grads: dict
    dtype: np.dtype
    rng: np.random.Generator
    training = True  # a new layer is in training mode, as a torch.nn.Module is

    def _init_params(self, shapes, bound, rng):
        """Fill ``params`` with U(-bound, bound) in the given key order; zero ``grads``; keep
        ``rng`` (a Generator) as the layer's ``rng`` (the recurrent layers' dropout draws from it)."""
        self.rng = rng
        self.training = True
        self.params = {}
        self.grads = {}
        for key, shape in shapes.items():
            self.params[key] = rng.uniform(-bound, bound, size=shape).astype(self.dtype)
            self.grads[key] = np.zeros(shape, dtype=self.dtype)

    def state_dict(self):
        """Return copies of the parameters, keyed like PyTorch's ``state_dict``.

        Returns
        -------
        dict of str to ndarray
            A new dict of new arrays: changing them does not change the layer.
        """
        return {key: value.copy() for key, value in self.params.items()}

    def load_state_dict(self, state_dict, strict=True):
        """Copy parameters into the layer, in place.

        Parameters
        ----------
        state_dict : mapping of str to array_like
            Keys as :meth:`state_dict` gives them. A PyTorch module's ``state_dict`` converted to
            NumPy (``{k: v.numpy() for k, v in m.state_dict().items()}``) works as is. Values may
            be any real arrays (anything ``np.asarray`` takes, CPU torch tensors included); they
            are cast to the layer's dtype.
        strict : bool, default True
            If True, the keys must match exactly. If False, missing and unexpected keys are
            ignored.

        Raises
        ------
        ValueError
            If keys are missing or unexpected (naming them) or a value's shape is wrong. Nothing
            is copied unless every value is valid.
        TypeError
            If a value does not hold real numbers.

        Notes
        -----
        Values are copied into the existing ``params`` arrays, so references to them (held by an
        optimizer, say) stay valid.
        """
        keys = set(state_dict)
        missing = [k for k in self.params if k not in keys]
        unexpected = sorted(str(k) for k in keys if k not in self.params)
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise ValueError(f"load_state_dict: {'; '.join(parts)}")
        staged = {}
        for key, target in self.params.items():
            if key not in keys:
                continue
            value = np.asarray(state_dict[key])
            if not (np.issubdtype(value.dtype, np.floating)
                    or np.issubdtype(value.dtype, np.integer)):
                raise TypeError(f"load_state_dict: {key} must hold real numbers, "
                                f"got dtype {value.dtype}")
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict: {key} has shape {value.shape}, "
                                 f"expected {target.shape}")
            staged[key] = value
        for key, value in staged.items():
            np.copyto(self.params[key], value, casting="unsafe")

    def train(self, mode=True):
        """Set training mode (``mode=True``) or evaluation mode (``mode=False``), as
        ``torch.nn.Module.train`` does.

        Only the recurrent layers' dropout between layers (``dropout > 0``) depends on it: it is
        applied in training mode only. Every other layer computes the same in both modes.

        Parameters
        ----------
        mode : bool, default True

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If ``mode`` is not a bool (PyTorch's error).
        """
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        self.training = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode: the same as ``train(False)``. Returns self."""
        return self.train(False)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)
