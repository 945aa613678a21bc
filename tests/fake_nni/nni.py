"""A stand-in for NNI's trial API (NNI is unmaintained since 2023): values from the file named
by $FAKE_NNI_PARAMS, every call appended as a JSON line to $FAKE_NNI_LOG."""
import json
import os


def _record(call, value):
    with open(os.environ["FAKE_NNI_LOG"], "a") as log:
        log.write(json.dumps({"call": call, "value": value}) + "\n")


def get_next_parameter():
    with open(os.environ["FAKE_NNI_PARAMS"]) as f:
        values = json.load(f)
    _record("get_next_parameter", values)
    return values


def report_intermediate_result(metric):
    _record("report_intermediate_result", metric)


def report_final_result(metric):
    _record("report_final_result", metric)
