"""llmcap's Streamlit app: Evidence → What-if → What to buy → Justification (``make app``).

``streamlit run app/Home.py`` serves four pages over ``capacity``: the measured evidence, the
what-if calculator, every Bedrock option to buy for a target, and the quota-increase
justification with its downloads.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="llmcap — capacity and quota justification", layout="wide")
page = st.navigation(
    [
        st.Page(HERE / "views" / "evidence.py", title="Evidence", default=True),
        st.Page(HERE / "calculator.py", title="What-if", url_path="what-if"),
        st.Page(HERE / "views" / "buy.py", title="What to buy", url_path="what-to-buy"),
        st.Page(HERE / "views" / "justification.py", title="Justification"),
    ]
)
page.run()
