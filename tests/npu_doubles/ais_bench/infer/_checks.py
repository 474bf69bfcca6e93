"""Argument checks of ais_bench UP (interface_check.py / path_security_check.py), same
exceptions and messages; raised before anything touches the device."""
import logging
import os
import re
import stat

logger = logging.getLogger("ais_bench")

PATH_WHITE_LIST = re.compile(r"[^_A-Za-z0-9/.-]")
MAX_PATH, MAX_NAME = 4096, 255
OM_MAX_SIZE = 10 * 1024 ** 3
ACL_JSON_MAX_SIZE = 8 * 1024
LOOP_MAX = 100000
CUSTOM_SIZE_MAX = 16 * 1024 ** 3
CUSTOM_COUNT_MAX = 256
MODEL_INPUT_TENSOR_COUNT_MAX = 1024
MODES = ("static", "dymbatch", "dymhw", "dymdims", "dymshape")


def check_path_legality(path, max_size, suffix):
    """A readable regular file, not a symlink, owned by the user or their group, not group/other
    writable, with `suffix`, whose absolute path uses only [_A-Za-z0-9/.-]."""
    absolute = os.path.abspath(path)
    if (len(absolute) > MAX_PATH or any(len(p) > MAX_NAME for p in absolute.split("/"))
            or PATH_WHITE_LIST.search(absolute)):
        logger.error("path contains illegal char, legal chars include A-Z a-z 0-9 _ - / .")
        raise ValueError("The path string is illegal. Please check.")
    st = os.stat(absolute) if os.path.exists(absolute) else None
    if st is None or not stat.S_ISREG(st.st_mode):
        raise ValueError(f"The path:{path} is not a file.")
    problem = None
    if os.path.islink(absolute):
        problem = f"path :{absolute} is a soft link, not supported"
    elif st.st_uid != os.geteuid() and st.st_gid not in os.getgroups():
        problem = f"current user isn't path:{absolute}'s owner or ownergroup"
    elif stat.S_IMODE(st.st_mode) & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"The file {absolute} is group writable, or is others writable"
    elif not os.access(absolute, os.R_OK) or not st.st_mode & stat.S_IRUSR:
        problem = f"Current user doesn't have read permission to the file {absolute}"
    if problem:
        logger.error(problem)
        raise ValueError(f"The path:{path} is illegal. Please check the error log for more "
                         "detail.")
    if os.path.splitext(absolute)[1] != f".{suffix}":
        raise ValueError(f"The suffix of path:{path} not in ['{suffix}']. Please check.")
    if st.st_size > max_size:
        raise ValueError(f"The file:{path} size is larger than {max_size}. Please check.")


def check_model_path_legality(value):
    if not value:
        raise RuntimeError("empty model path!")
    check_path_legality(value, OM_MAX_SIZE, "om")


def check_acl_json_path_legality(value):
    if value:
        check_path_legality(value, ACL_JSON_MAX_SIZE, "json")


def check_device_range_valid(value):
    if not isinstance(value, int):  # numpy integers are refused too
        raise TypeError(f"device:{value} is not a integer!")
    if not 0 <= value <= 255:
        raise ValueError(f"device:{value} is illegal. legal value range is [0, 255]")


def check_loop_size(value):
    if not isinstance(value, int):
        raise TypeError(f"value:{value} is not a integer!")
    if not 0 < value <= LOOP_MAX:
        raise ValueError(f"input value:{value} is out of range. Please check.")


def check_positive_integer(value):
    if not isinstance(value, int):
        raise TypeError(f"value:{value} is not a integer!")
    if not 0 < value <= 2 ** 31 - 1:
        raise ValueError(f"input value:{value} is out of range. Please check.")


def check_list(value, max_len, allow_empty=True, data_type=None):
    if not isinstance(value, list):
        raise ValueError("the list be checked is not a list!")  # noqa: TRY004 - as upstream
    if not allow_empty and not value:
        raise ValueError("the list is empty")
    if len(value) > max_len:
        raise ValueError(f"the list's length is over {max_len}!")
    if data_type is not None and any(not isinstance(v, data_type) for v in value):
        raise ValueError(f"some value in list is not the expected type: {data_type}")


def check_dict(value, max_len, allow_empty=True):
    if not isinstance(value, dict):
        raise ValueError("the list be checked is not a list!")  # noqa: TRY004 - as upstream
    if not allow_empty and not value:
        raise ValueError("the list is empty")
    if len(value) > max_len:
        raise ValueError(f"the list's length is over {max_len}!")


def check_bool_value(value):
    if not isinstance(value, bool):
        raise TypeError(f"value:{value} is not a bool!")


def check_custom_size(value, mode="dymshape"):
    if mode not in MODES:
        raise ValueError("infer mode is illegal, Please check.")
    if value is None:
        if mode == "dymshape":
            raise ValueError(f"custom_size:{value} dismatch with mode. Please check.")
        return
    if isinstance(value, list):
        check_list(value, CUSTOM_COUNT_MAX, allow_empty=False, data_type=int)
        if any(not 0 < v <= CUSTOM_SIZE_MAX for v in value):
            raise ValueError(f"value:{value} in custom size list is out of range. Please check.")
    elif isinstance(value, int):
        if not 0 < value <= CUSTOM_SIZE_MAX:
            raise ValueError(f"custom size value:{value} is out of range. Please check.")
    else:
        raise TypeError(f"value:{value} is not a integer!")


def check_in_out_list(in_out_list, inputs, outputs):
    if len(in_out_list) != len(inputs):
        raise RuntimeError("inputs' amount and length of in_out_list not matched!")
    for reused in in_out_list:
        if not isinstance(reused, int):
            raise TypeError(f"in_out_list reused_index:{reused} is not a integer!")
        if reused < -1 or reused >= len(outputs):
            raise IndexError(f"in_out_list[{in_out_list}] out of range, length range is "
                             f"(-1, {len(outputs)})")
