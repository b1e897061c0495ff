"""Type stubs for fastnn._runtime: thread counts, the CPU path and the build configuration."""
from types import ModuleType
from typing import Any, Final, Literal, NotRequired, TypeAlias, TypedDict

__version__: str
DISTRIBUTION: Final[str]

# The compiled extension, or None when it could not be loaded (LOAD_ERROR says why).
_kernels: ModuleType | None
LOAD_ERROR: str | None

DEFAULT_SERIAL_THRESHOLD: Final[int]
serial_threshold: int

_CpuPath: TypeAlias = Literal["portable", "avx2", "avx512"]

class _GemmKernelInfo(TypedDict):
    name: str
    mr: int
    nr: int
    mc: int
    kc: int
    nc: int

class _FmaPeak(TypedDict):
    isa: _CpuPath
    threads: int
    float32: float
    float64: float

class _Config(TypedDict):
    distribution: str
    version: str
    compiled: bool
    load_error: str | None
    openmp: bool
    cpu_path: _CpuPath | Literal["reference"]
    cpu_best: _CpuPath | None
    num_threads: int
    gemm_kernels: dict[str, _GemmKernelInfo] | None
    fma_peak: NotRequired[_FmaPeak | None]  # only with show_config(peak=True)

def set_num_threads(n: int | None) -> None: ...
def get_num_threads() -> int: ...
def threads_for(flops: int) -> int: ...
def cpu_path() -> _CpuPath | Literal["reference"]: ...
def set_cpu_path(name: _CpuPath) -> _CpuPath: ...
PEAK_DTYPES: Final[tuple[str, str]]

def fma_peak(threads: int | None = None, dtype: Any = "float32", isa: _CpuPath | None = None, *,
             seconds: float = 0.05, repeats: int = 5) -> float: ...
def show_config(print_out: bool = True, peak: bool = False) -> _Config: ...
