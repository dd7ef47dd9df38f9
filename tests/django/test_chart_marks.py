"""The line charts' points, made in Python (``svg.line_chart``'s ``marks``)
rather than by a template loop: the same markup, numbers as SVG wants them in
any locale, one decimal in the hover title as ``floatformat:"-1"`` gave."""

from __future__ import annotations

import re

from sauci.contrib.django.svg import line_chart


def test_each_known_value_is_one_circle_with_its_value_as_title():
    chart = line_chart([12.0, None, 34.26, 0.04], unit="s")
    marks = str(chart["marks"])
    circles = re.findall(
        r'<circle class="pt" cx="([\d.]+)" cy="([\d.]+)" r="2.5"><title>([^<]*)</title></circle>',
        marks,
    )
    assert ["12s", "34.3s", "0s"] == [t for _, _, t in circles]
    assert [(str(x), str(y)) for x, y, _ in chart["points"]] == [(x, y) for x, y, _ in circles]
    assert marks.count("<circle") == 3


def test_the_unit_is_escaped():
    marks = str(line_chart([1.5], unit='<b>"&')["marks"])
    assert "<b>" not in marks and "1.5&lt;b&gt;&quot;&amp;" in marks


def test_in_a_comma_locale_the_coordinates_keep_their_point(settings):
    settings.LANGUAGE_CODE = "de"
    settings.USE_THOUSAND_SEPARATOR = True
    from django.utils import translation

    with translation.override("de"):
        marks = str(line_chart([1234.5, 2.25])["marks"])
    assert re.search(r'cx="\d+\.\d"', marks) and "," not in marks
