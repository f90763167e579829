export default function Header() {
  return (
    <header className="site-header">
      <div className="bar">
        <a className="brand" href="/">Levqor</a>
        <nav aria-label="Main">
          <ul>
            <li><a href="/pricing">Pricing</a></li>
            <li><a href="/docs">API docs</a></li>
            <li><a href="/faq">FAQ</a></li>
          </ul>
        </nav>
      </div>
    </header>
  );
}
