import logging

from shared.masking import MaskingFilter, mask_id_number, mask_mobile, mask_name, mask_text


def test_personal_data_is_masked() -> None:
    assert mask_id_number("11010519491231002X") == "110***********002X"
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_name("张三丰") == "张**"
    text = "member 11010519491231002X phone 13812345678 card GH0000000017"
    assert mask_text(text) == "member 110***********002X phone 138****5678 card GH0000000017"


def test_log_records_are_masked_whatever_the_caller_formatted() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, "f", 1, "joined %s", ("11010519491231002X",), None
    )
    MaskingFilter().filter(record)
    assert record.getMessage() == "joined 110***********002X"
