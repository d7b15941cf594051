//! One set of queries over two databases: SQLite (the embedded default) and
//! PostgreSQL (several replicas on one database).
//!
//! The store's statements are written once. A statement is the same text on
//! both (parameters as `$1`, which SQLite reads too) unless the dialects
//! differ, and then it carries both texts ([`per`]). Parameters are owned
//! values bound when the statement runs on whichever connection it is given;
//! rows decode straight into the caller's tuple on either driver, with no
//! intermediate row as sqlx's `Any` would make.
//!
//! Schemas agree on types so one decode serves both: integers are 64-bit
//! (BIGINT on PostgreSQL), text is text, bytes are BLOB / BYTEA.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, AssertSqlSafe, Connection, FromRow, PgConnection, Postgres};
use sqlx::{Sqlite, SqliteConnection};

/// Which database a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection to either database, pooled or owned. Counts the statements
/// it runs when asked to (the writer's: a group's statements must not grow
/// with the group).
pub struct Conn {
    inner: Inner,
    statements: Option<Arc<AtomicU64>>,
}

enum Inner {
    Sqlite(Box<SqliteConnection>),
    SqlitePooled(PoolConnection<Sqlite>),
    Postgres(Box<PgConnection>),
    PostgresPooled(PoolConnection<Postgres>),
}

/// The driver's connection behind a [`Conn`], borrowed for one statement.
pub(super) enum Exec<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn {
    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) | Inner::SqlitePooled(_) => Dialect::Sqlite,
            Inner::Postgres(_) | Inner::PostgresPooled(_) => Dialect::Postgres,
        }
    }

    /// Counts every statement run from now on into `counter`.
    pub(super) fn count_statements(&mut self, counter: Arc<AtomicU64>) {
        self.statements = Some(counter);
    }

    pub(super) fn exec(&mut self) -> Exec<'_> {
        if let Some(n) = &self.statements {
            n.fetch_add(1, Ordering::Relaxed);
        }
        match &mut self.inner {
            Inner::Sqlite(c) => Exec::Sqlite(c),
            Inner::SqlitePooled(c) => Exec::Sqlite(c),
            Inner::Postgres(c) => Exec::Postgres(c),
            Inner::PostgresPooled(c) => Exec::Postgres(c),
        }
    }

    /// Continues on `fresh` in place of a lost connection, counting as before.
    pub(super) fn replace(&mut self, fresh: Conn) {
        self.inner = fresh.inner;
    }

    /// The SQLite connection, for what only SQLite has (its hooks and
    /// limits); `None` on PostgreSQL.
    pub(super) fn sqlite(&mut self) -> Option<&mut SqliteConnection> {
        match &mut self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::SqlitePooled(c) => Some(c),
            _ => None,
        }
    }

    /// Closes an owned connection (a pooled one goes back to its pool).
    pub async fn close(self) -> sqlx::Result<()> {
        match self.inner {
            Inner::Sqlite(c) => c.close().await,
            Inner::Postgres(c) => c.close().await,
            Inner::SqlitePooled(_) | Inner::PostgresPooled(_) => Ok(()),
        }
    }
}

impl From<SqliteConnection> for Conn {
    fn from(c: SqliteConnection) -> Self {
        Conn {
            inner: Inner::Sqlite(Box::new(c)),
            statements: None,
        }
    }
}

impl From<PoolConnection<Sqlite>> for Conn {
    fn from(c: PoolConnection<Sqlite>) -> Self {
        Conn {
            inner: Inner::SqlitePooled(c),
            statements: None,
        }
    }
}

impl From<PgConnection> for Conn {
    fn from(c: PgConnection) -> Self {
        Conn {
            inner: Inner::Postgres(Box::new(c)),
            statements: None,
        }
    }
}

impl From<PoolConnection<Postgres>> for Conn {
    fn from(c: PoolConnection<Postgres>) -> Self {
        Conn {
            inner: Inner::PostgresPooled(c),
            statements: None,
        }
    }
}

/// A statement's text: one for both dialects, or one each.
#[derive(Clone, Debug)]
pub enum Sql {
    Same(Cow<'static, str>),
    Per {
        sqlite: Cow<'static, str>,
        postgres: Cow<'static, str>,
    },
}

impl Sql {
    /// The text for `dialect`, moved out: a built statement (a multi-row
    /// insert can be long) is not copied to be run.
    fn into_text(self, dialect: Dialect) -> Cow<'static, str> {
        match (self, dialect) {
            (Sql::Same(text), _) => text,
            (Sql::Per { sqlite, .. }, Dialect::Sqlite) => sqlite,
            (Sql::Per { postgres, .. }, Dialect::Postgres) => postgres,
        }
    }
}

impl From<&'static str> for Sql {
    fn from(s: &'static str) -> Self {
        Sql::Same(Cow::Borrowed(s))
    }
}

impl From<String> for Sql {
    fn from(s: String) -> Self {
        Sql::Same(Cow::Owned(s))
    }
}

/// A statement whose text differs between the dialects.
pub fn per(sqlite: &'static str, postgres: &'static str) -> Sql {
    Sql::Per {
        sqlite: Cow::Borrowed(sqlite),
        postgres: Cow::Borrowed(postgres),
    }
}

/// A bound parameter. Lists are JSON text on SQLite (read with `json_each`)
/// and arrays on PostgreSQL (read with `= ANY($n)`).
#[derive(Clone, Debug)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    Ints(Option<Vec<i64>>),
    Texts(Option<Vec<String>>),
    /// One column of a [`Builder::push_values`] block as an array
    /// (PostgreSQL's `unnest`); built here, never bound by callers.
    Column(Column),
}

/// The values of one column of a multi-row block, nulls kept.
#[derive(Clone, Debug)]
pub enum Column {
    Ints(Vec<Option<i64>>),
    Texts(Vec<Option<String>>),
    Blobs(Vec<Option<Vec<u8>>>),
}

impl Column {
    /// An empty column of `v`'s type, or `None` for a list (no array of
    /// arrays: such a block stays `VALUES`).
    fn of(v: &Value) -> Option<Column> {
        match v {
            Value::Int(_) => Some(Column::Ints(Vec::new())),
            Value::Text(_) => Some(Column::Texts(Vec::new())),
            Value::Blob(_) => Some(Column::Blobs(Vec::new())),
            Value::Ints(_) | Value::Texts(_) | Value::Column(_) => None,
        }
    }

    fn sql_type(&self) -> &'static str {
        match self {
            Column::Ints(_) => "int8[]",
            Column::Texts(_) => "text[]",
            Column::Blobs(_) => "bytea[]",
        }
    }

    /// Adds `v`, of this column's type (checked by the caller).
    fn push(&mut self, v: Value) {
        match (self, v) {
            (Column::Ints(c), Value::Int(v)) => c.push(v),
            (Column::Texts(c), Value::Text(v)) => c.push(v),
            (Column::Blobs(c), Value::Blob(v)) => c.push(v),
            _ => {}
        }
    }
}

macro_rules! value_from {
    ($variant:ident: $($t:ty => $f:expr),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(Some(($f)(v)))
            }
        }
        impl From<Option<$t>> for Value {
            fn from(v: Option<$t>) -> Self {
                Value::$variant(v.map($f))
            }
        }
    )*};
}

value_from!(Int: i64 => |v| v, i32 => i64::from, bool => i64::from);
value_from!(Text: String => |v| v, &str => str::to_owned, &String => String::clone);
value_from!(Blob: Vec<u8> => |v| v, &[u8] => <[u8]>::to_vec, &Vec<u8> => Vec::clone);
value_from!(Ints: Vec<i64> => |v| v);
value_from!(Texts: Vec<String> => |v| v);

impl Value {
    fn add_sqlite(self, args: &mut SqliteArguments) -> Result<(), sqlx::error::BoxDynError> {
        match self {
            Value::Int(v) => args.add(v),
            Value::Text(v) => args.add(v),
            Value::Blob(v) => args.add(v),
            Value::Ints(v) => args.add(v.map(|v| json_list(&v))),
            Value::Texts(v) => args.add(v.map(|v| json_list(&v))),
            Value::Column(_) => Err("a column array is PostgreSQL's".into()),
        }
    }

    fn add_postgres(self, args: &mut PgArguments) -> Result<(), sqlx::error::BoxDynError> {
        match self {
            Value::Int(v) => args.add(v),
            Value::Text(v) => args.add(v),
            Value::Blob(v) => args.add(v),
            Value::Ints(v) => args.add(v),
            Value::Texts(v) => args.add(v),
            Value::Column(Column::Ints(v)) => args.add(v),
            Value::Column(Column::Texts(v)) => args.add(v),
            Value::Column(Column::Blobs(v)) => args.add(v),
        }
    }
}

fn json_list<T: serde::Serialize>(v: &[T]) -> String {
    // Lists of integers and strings always serialize.
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn sqlite_args(values: Vec<Value>) -> sqlx::Result<SqliteArguments> {
    let mut args = SqliteArguments::default();
    for v in values {
        v.add_sqlite(&mut args).map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

fn postgres_args(values: Vec<Value>) -> sqlx::Result<PgArguments> {
    let mut args = PgArguments::default();
    for v in values {
        v.add_postgres(&mut args).map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

/// A row type both drivers decode.
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// A statement and its parameters, run on either database.
#[derive(Clone, Debug)]
pub struct Query {
    sql: Sql,
    args: Vec<Value>,
    /// A multi-row block, spelled for the dialect when the statement runs.
    rows: Option<Rows>,
    /// See [`Builder::plan_per_call`].
    per_call: bool,
}

/// Where a [`Builder::push_values`] block stands in the text.
const ROWS_MARK: &str = "\u{1}rows\u{1}";

/// The rows of a [`Builder::push_values`] block, row after row.
#[derive(Clone, Debug, Default)]
struct Rows {
    columns: usize,
    values: Vec<Value>,
}

impl Rows {
    /// The block's text for `dialect`, its parameters appended to `args`.
    ///
    /// SQLite: `VALUES ($n, ..), (..)`. PostgreSQL: `SELECT * FROM
    /// unnest($n::int8[], ..)`, one array per column, so the statement's
    /// text is the same whatever the number of rows: the server and the
    /// driver prepare it once instead of once per row count.
    fn spell(mut self, dialect: Dialect, args: &mut Vec<Value>) -> String {
        if dialect == Dialect::Postgres
            && let Some(columns) = self.columns()
        {
            let mut sql = String::from("SELECT * FROM unnest(");
            for (i, c) in columns.into_iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}::{}", args.len() + 1, c.sql_type()));
                args.push(Value::Column(c));
            }
            sql.push(')');
            return sql;
        }
        // SQLite: when the block holds every parameter of the statement, they
        // are anonymous (`?`), numbered in the order they appear, which is the
        // order they are bound. sqlx binds a `$n` by asking SQLite its name, a
        // walk of the statement's list of names: per parameter, so a block of
        // hundreds cost its square (7 % of a status-update bench's samples).
        let anonymous = dialect == Dialect::Sqlite && args.is_empty();
        let mut sql = String::from("VALUES ");
        let width = self.columns.max(1);
        for (i, v) in self.values.into_iter().enumerate() {
            match (i % width, i) {
                (0, 0) => sql.push('('),
                (0, _) => sql.push_str("), ("),
                _ => sql.push_str(", "),
            }
            args.push(v);
            if anonymous {
                sql.push('?');
            } else {
                sql.push_str(&format!("${}", args.len()));
            }
        }
        sql.push(')');
        sql
    }

    /// The block as column arrays, if every value is a scalar of its
    /// column's type.
    fn columns(&mut self) -> Option<Vec<Column>> {
        if self.values.is_empty() {
            return None;
        }
        let width = self.columns.max(1);
        let mut columns: Vec<Column> = self.values[..width.min(self.values.len())]
            .iter()
            .map(Column::of)
            .collect::<Option<_>>()?;
        // Checked before anything moves: a block that cannot be arrays stays
        // whole for `VALUES` (and an event body is not copied to find out).
        let same = |a: &Value, b: &Value| std::mem::discriminant(a) == std::mem::discriminant(b);
        if !self
            .values
            .iter()
            .enumerate()
            .all(|(i, v)| same(v, &self.values[i % width]))
        {
            return None;
        }
        for (i, v) in std::mem::take(&mut self.values).into_iter().enumerate() {
            columns[i % width].push(v);
        }
        Some(columns)
    }
}

impl Query {
    /// The text and parameters to run on `dialect`.
    /// The text and parameters to run on `dialect`, and whether it is kept
    /// prepared (see [`Builder::plan_per_call`]).
    fn into_parts(self, dialect: Dialect) -> (Cow<'static, str>, Vec<Value>, bool) {
        let Query {
            sql,
            mut args,
            rows,
            per_call,
        } = self;
        let text = sql.into_text(dialect);
        let persistent = !(per_call && dialect == Dialect::Postgres);
        match rows {
            None => (text, args, persistent),
            Some(rows) => {
                let block = rows.spell(dialect, &mut args);
                (
                    Cow::Owned(text.replacen(ROWS_MARK, &block, 1)),
                    args,
                    persistent,
                )
            }
        }
    }
}

/// A statement without rows to read (or whose rows are not read).
pub fn query(sql: impl Into<Sql>) -> Query {
    Query {
        sql: sql.into(),
        args: Vec::new(),
        rows: None,
        per_call: false,
    }
}

/// A statement whose rows decode into `R`.
pub fn query_as<R: Row>(sql: impl Into<Sql>) -> QueryAs<R> {
    QueryAs {
        query: query(sql),
        row: PhantomData,
    }
}

/// A statement whose rows are one column each, of type `T`.
pub fn query_scalar<T>(sql: impl Into<Sql>) -> QueryScalar<T>
where
    (T,): Row,
{
    QueryScalar {
        query: query_as(sql),
    }
}

impl Query {
    pub fn bind(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Runs the statement; returns the rows it changed.
    pub async fn execute(self, conn: &mut Conn) -> sqlx::Result<u64> {
        let (text, args, persistent) = self.into_parts(conn.dialect());
        Ok(match conn.exec() {
            Exec::Sqlite(c) => {
                sqlx::query_with::<Sqlite, _>(AssertSqlSafe(text), sqlite_args(args)?)
                    .execute(c)
                    .await?
                    .rows_affected()
            }
            Exec::Postgres(c) => {
                sqlx::query_with::<Postgres, _>(AssertSqlSafe(text), postgres_args(args)?)
                    .persistent(persistent)
                    .execute(c)
                    .await?
                    .rows_affected()
            }
        })
    }
}

/// Runs statements without parameters in one round trip (PostgreSQL's
/// simple query protocol; SQLite runs them one after another).
/// The text is the caller's own, never a client's.
pub async fn script(conn: &mut Conn, sql: &str) -> sqlx::Result<()> {
    let sql = AssertSqlSafe(sql.to_owned());
    match conn.exec() {
        Exec::Sqlite(c) => {
            sqlx::raw_sql(sql).execute(c).await?;
        }
        Exec::Postgres(c) => {
            sqlx::raw_sql(sql).execute(c).await?;
        }
    }
    Ok(())
}

/// Runs `$query`'s statement on `$conn` as a `query_as_with` and calls
/// `$fetch` on it, whichever the driver.
macro_rules! fetch {
    ($query:expr, $conn:expr, $fetch:ident) => {{
        let conn: &mut Conn = $conn;
        let (text, args, persistent) = $query.into_parts(conn.dialect());
        match conn.exec() {
            Exec::Sqlite(c) => {
                sqlx::query_as_with::<Sqlite, R, _>(AssertSqlSafe(text), sqlite_args(args)?)
                    .$fetch(c)
                    .await
            }
            Exec::Postgres(c) => {
                sqlx::query_as_with::<Postgres, R, _>(AssertSqlSafe(text), postgres_args(args)?)
                    .persistent(persistent)
                    .$fetch(c)
                    .await
            }
        }
    }};
}

/// A statement whose rows decode into `R`.
pub struct QueryAs<R> {
    query: Query,
    row: PhantomData<fn() -> R>,
}

impl<R: Row> QueryAs<R> {
    pub fn bind(mut self, v: impl Into<Value>) -> Self {
        self.query = self.query.bind(v);
        self
    }

    pub async fn fetch_all(self, conn: &mut Conn) -> sqlx::Result<Vec<R>> {
        fetch!(self.query, conn, fetch_all)
    }

    pub async fn fetch_one(self, conn: &mut Conn) -> sqlx::Result<R> {
        fetch!(self.query, conn, fetch_one)
    }

    pub async fn fetch_optional(self, conn: &mut Conn) -> sqlx::Result<Option<R>> {
        fetch!(self.query, conn, fetch_optional)
    }
}

/// A statement whose rows are one column each.
pub struct QueryScalar<T> {
    query: QueryAs<(T,)>,
}

impl<T> QueryScalar<T>
where
    (T,): Row,
{
    pub fn bind(mut self, v: impl Into<Value>) -> Self {
        self.query = self.query.bind(v);
        self
    }

    pub async fn fetch_all(self, conn: &mut Conn) -> sqlx::Result<Vec<T>> {
        Ok(self
            .query
            .fetch_all(conn)
            .await?
            .into_iter()
            .map(|(v,)| v)
            .collect())
    }

    pub async fn fetch_one(self, conn: &mut Conn) -> sqlx::Result<T> {
        Ok(self.query.fetch_one(conn).await?.0)
    }

    pub async fn fetch_optional(self, conn: &mut Conn) -> sqlx::Result<Option<T>> {
        Ok(self.query.fetch_optional(conn).await?.map(|(v,)| v))
    }
}

/// A statement built piece by piece (multi-row inserts, optional filters):
/// text pushed to both dialects at once, or to each its own, and parameters
/// numbered as they are pushed.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    sqlite: String,
    postgres: String,
    args: Vec<Value>,
    rows: Option<Rows>,
    per_call: bool,
}

impl Builder {
    pub fn new(sql: &str) -> Self {
        Builder {
            sqlite: sql.to_owned(),
            postgres: sql.to_owned(),
            args: Vec::new(),
            rows: None,
            per_call: false,
        }
    }

    /// Plans the statement for its parameters at every call on PostgreSQL
    /// (an unnamed statement), instead of keeping it prepared. After five
    /// calls PostgreSQL may switch a prepared statement to one generic plan
    /// for all parameters, and for a search whose selectivity depends on
    /// them (a title substring, say) that plan can read every row: planning
    /// costs far less than that.
    pub fn plan_per_call(&mut self) -> &mut Self {
        self.per_call = true;
        self
    }

    /// Text the same in both dialects.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sqlite.push_str(sql);
        self.postgres.push_str(sql);
        self
    }

    /// Text that differs between the dialects.
    pub fn push_per(&mut self, sqlite: &str, postgres: &str) -> &mut Self {
        self.sqlite.push_str(sqlite);
        self.postgres.push_str(postgres);
        self
    }

    /// A parameter, in its place.
    pub fn push_bind(&mut self, v: impl Into<Value>) -> &mut Self {
        self.args.push(v.into());
        let placeholder = format!("${}", self.args.len());
        self.push(&placeholder)
    }

    /// `x IN list`, for a list parameter: `json_each` on SQLite, `ANY` on PostgreSQL.
    pub fn push_in_list(&mut self, column: &str, list: impl Into<Value>) -> &mut Self {
        self.args.push(list.into());
        let n = self.args.len();
        self.sqlite
            .push_str(&format!("{column} IN (SELECT value FROM json_each(${n}))"));
        self.postgres.push_str(&format!("{column} = ANY(${n})"));
        self
    }

    /// The rows of a multi-row INSERT, each row's columns pushed by `row`:
    /// `VALUES (..), (..)` on SQLite, `SELECT * FROM unnest(..)` of one array
    /// per column on PostgreSQL. One block per statement; its parameters are
    /// numbered after all the others, whatever comes after it.
    pub fn push_values<T>(
        &mut self,
        rows: impl IntoIterator<Item = T>,
        mut row: impl FnMut(&mut Separated<'_>, T),
    ) -> &mut Self {
        assert!(self.rows.is_none(), "one block of rows per statement");
        self.push(ROWS_MARK);
        let mut block = Rows::default();
        for r in rows {
            let before = block.values.len();
            row(&mut Separated { rows: &mut block }, r);
            block.columns = block.values.len() - before;
        }
        self.rows = Some(block);
        self
    }

    pub fn build(self) -> Query {
        Query {
            sql: Sql::Per {
                sqlite: Cow::Owned(self.sqlite),
                postgres: Cow::Owned(self.postgres),
            },
            args: self.args,
            rows: self.rows,
            per_call: self.per_call,
        }
    }

    pub fn build_query_as<R: Row>(self) -> QueryAs<R> {
        QueryAs {
            query: self.build(),
            row: PhantomData,
        }
    }

    pub fn build_query_scalar<T>(self) -> QueryScalar<T>
    where
        (T,): Row,
    {
        QueryScalar {
            query: self.build_query_as(),
        }
    }
}

/// The columns of one row of [`Builder::push_values`].
pub struct Separated<'b> {
    rows: &'b mut Rows,
}

impl Separated<'_> {
    pub fn push_bind(&mut self, v: impl Into<Value>) -> &mut Self {
        self.rows.values.push(v.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_planned_per_call_is_not_kept_prepared_on_postgresql_only() {
        let mut b = Builder::new("SELECT 1");
        assert!(b.clone().build().into_parts(Dialect::Postgres).2);
        b.plan_per_call();
        assert!(!b.clone().build().into_parts(Dialect::Postgres).2);
        // SQLite's plans do not depend on parameter values (its build has no
        // STAT4): a statement kept prepared plans as a new one would.
        assert!(b.build().into_parts(Dialect::Sqlite).2);
    }

    #[test]
    fn a_builder_numbers_parameters_in_both_dialects() {
        let mut b = Builder::new("SELECT id FROM t WHERE ");
        b.push_in_list("kind", vec![1i64, 2])
            .push(" AND name = ")
            .push_bind("x")
            .push_per(" LIMIT 1", " FETCH FIRST 1 ROWS ONLY");
        let q = b.build();
        assert_eq!(
            q.sql.clone().into_text(Dialect::Sqlite),
            "SELECT id FROM t WHERE kind IN (SELECT value FROM json_each($1)) AND name = $2 LIMIT 1"
        );
        assert_eq!(
            q.sql.into_text(Dialect::Postgres),
            "SELECT id FROM t WHERE kind = ANY($1) AND name = $2 FETCH FIRST 1 ROWS ONLY"
        );
        assert_eq!(q.args.len(), 2);
    }

    fn rows_block() -> Query {
        let mut b = Builder::new("INSERT INTO t (a, b, c) ");
        b.push_values(
            [(1i64, "x", Some(vec![1u8])), (2, "y", None)],
            |row, (a, s, c)| {
                row.push_bind(a).push_bind(s).push_bind(c);
            },
        );
        b.push(" ON CONFLICT (a) DO UPDATE SET b = ").push_bind("z");
        b.build()
    }

    #[test]
    fn rows_are_values_on_sqlite_numbered_after_the_other_parameters() {
        let (text, args, _) = rows_block().into_parts(Dialect::Sqlite);
        assert_eq!(
            text,
            "INSERT INTO t (a, b, c) VALUES ($2, $3, $4), ($5, $6, $7) ON CONFLICT (a) DO UPDATE SET b = $1"
        );
        assert_eq!(args.len(), 7);
    }

    #[test]
    fn a_block_holding_every_parameter_is_anonymous_on_sqlite() {
        let mut b = Builder::new("INSERT INTO t (a, b) ");
        b.push_values([(1i64, "x"), (2, "y")], |row, (a, s)| {
            row.push_bind(a).push_bind(s);
        });
        let (text, args, _) = b.build().into_parts(Dialect::Sqlite);
        assert_eq!(text, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
        assert!(matches!(
            &args[..],
            [Value::Int(Some(1)), Value::Text(Some(x)), Value::Int(Some(2)), Value::Text(Some(y))]
                if x == "x" && y == "y"
        ));
    }

    #[test]
    fn rows_are_one_array_per_column_on_postgres_whatever_their_number() {
        let (text, args, _) = rows_block().into_parts(Dialect::Postgres);
        assert_eq!(
            text,
            "INSERT INTO t (a, b, c) SELECT * FROM unnest($2::int8[], $3::text[], $4::bytea[]) ON CONFLICT (a) DO UPDATE SET b = $1"
        );
        assert!(matches!(
            &args[1..],
            [
                Value::Column(Column::Ints(a)),
                Value::Column(Column::Texts(b)),
                Value::Column(Column::Blobs(c)),
            ] if a == &[Some(1), Some(2)]
                && b == &[Some("x".to_owned()), Some("y".to_owned())]
                && c == &[Some(vec![1u8]), None]
        ));
    }

    #[test]
    fn a_block_with_a_list_value_stays_values_on_postgres() {
        let mut b = Builder::new("INSERT INTO t (a) ");
        b.push_values([vec![1i64]], |row, a| {
            row.push_bind(a);
        });
        let (text, _, _) = b.build().into_parts(Dialect::Postgres);
        assert_eq!(text, "INSERT INTO t (a) VALUES ($1)");
    }
}
