import { render } from 'preact';

import 'uplot/dist/uPlot.min.css';
import './styles.css';

import { App } from './app';
import { applyStoredTheme } from './theme';

applyStoredTheme();
render(<App />, document.getElementById('app')!);
