"""The comparative study: evaluate + bench result files -> OUT/REPORT.md with PNG charts.

    study            run_study: runs (or reuses) the evaluate and bench stages, then the report
    render           write_report / render: the report from the result files alone
    results          load_study: the result files read into a `Study`, and figures derived from them
    readme           update_readme: the report as a marked README section
    findings         the conclusions, computed from the figures
    section_setup    the Set-up section;  section_accuracy: Accuracy, Calibration
    section_speed    Speed, Memory;  section_method: Method
    gallery          the gallery of disagreements: photos chosen, thumbnails, its section
    charts           the PNG charts
    format           how one value is written (numbers, intervals, paths)
    defaults         what the study uses when not told otherwise
"""

from topfive.report.readme import update_readme
from topfive.report.render import write_report
from topfive.report.results import Study, load_study
from topfive.report.study import run_study

__all__ = ["Study", "load_study", "run_study", "update_readme", "write_report"]
