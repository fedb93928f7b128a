"""`Lab`: the whole app in one widget: the search dashboard, the stratified sample and the proxy
explorer on the search's architectures, following one `Search`."""

from __future__ import annotations

import ipywidgets as w

from gm_lab.benchmark import Benchmark
from gm_lab.evolution import GenerationEvent, Search, SearchConfig
from gm_lab.widgets.dashboard import SearchDashboard
from gm_lab.widgets.explorer import ProxyExplorer
from gm_lab.widgets.strata import StratifiedSampleView

TABS = ("Search", "Sample", "Explore")


class Lab(w.Tab):
    """`Lab(SearchConfig(...))` (or `Lab(search)`): start the search from the dashboard; the
    Sample and Explore tabs fill in once its architectures are probed."""

    def __init__(self, search: Search | SearchConfig, interval: float = 0.25) -> None:
        if isinstance(search, SearchConfig):
            search = Search(search, benchmark=Benchmark.load(search.space))
        self.search = search
        self.dashboard = SearchDashboard(search, interval=interval)
        self.strata: StratifiedSampleView | None = None
        self.explorer: ProxyExplorer | None = None
        self._waiting = w.HTML("Start the search: this fills in once its samples are probed.")
        super().__init__([self.dashboard, self._waiting, w.HTML(self._waiting.value)])
        for i, title in enumerate(TABS):
            self.set_title(i, title)
        self.add_class("gm-lab")
        self.observe(self._on_tab, "selected_index")
        self._unsubscribe = search.subscribe(self._on_event)

    def explore(self) -> ProxyExplorer:
        """The explorer on the search's splits (prepares the search first if needed)."""
        if self.explorer is None:
            self.explorer = ProxyExplorer.from_search(self.search)
            self._fill_sample_tab()
            self.children = (self.dashboard, self.strata or self._waiting, self.explorer)
        return self.explorer

    def _fill_sample_tab(self) -> None:
        data = self.search.data
        if self.strata is not None or data is None:
            return
        bench = Benchmark.load(self.search.config.space)
        self.strata = StratifiedSampleView(
            bench.accuracy(self.search.config.datasets[0]),
            data.search_sample,
            data.heldout_sample,
            bins=self.search.config.bins,
        )

    def _on_tab(self, change: dict) -> None:
        if change["new"] in (1, 2) and self.search.data is not None:
            self.explore()

    def _on_event(self, event: GenerationEvent) -> None:
        """New hall of fame entries for the explorer (search thread; the picker is one trait)."""
        if self.explorer is not None and (event.generation % 5 == 0 or event.done):
            self.explorer.update_from(self.search.result())

    def close(self) -> None:
        self._unsubscribe()
        self.dashboard.close()
        super().close()
